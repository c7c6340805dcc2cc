//! Reads the `[X-Armor]` section of a unit file or drop-in.
//!
//! Hand-written, because no crate parses systemd's unit file syntax the way systemd does:
//! sections may repeat, `#` and `;` start comments, a trailing backslash continues a line, and
//! keys keep their order (list settings accumulate and an empty assignment resets them). Other
//! sections are skipped without being judged; that is systemd's business.

use std::path::Path;

use super::diag::{did_you_mean, Diagnostics};
use super::{Mode, Protection, Source};

/// The section unitarmor reads. systemd ignores sections that start with `X-`.
pub const SECTION: &str = "X-Armor";
/// The keys of that section.
pub const KEYS: [&str; 3] = ["ArmorPolicy", "ArmorMode", "ArmorExempt"];

/// A file larger than this is refused (systemd's own line limit is 1 MiB).
pub const MAX_FILE_BYTES: usize = 4 << 20;
/// A file in a user's own unit directory larger than this is refused (a user's files are
/// read at every pass: policy/user.rs).
pub const MAX_OWN_FILE_BYTES: u64 = 64 << 10;
/// A logical line longer than this is refused.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// Why a configuration file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A FIFO, socket, device (other than `/dev/null`) or directory: systemd does not read
    /// such a file, and reading it could block. Reported as a warning naming the file.
    #[error("not read: it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("file is larger than {MAX_FILE_BYTES} bytes; unitarmor reads at most that")]
    TooLarge,
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// A file in a user's unit directory that the user does not own (`policy/user.rs`): the
    /// daemon reads as root, and must not read for a user what the user could not.
    #[error("not read: owned by uid {0}, not by the user whose unit directory holds it")]
    NotOwned(u32),
    /// A user's file larger than [`MAX_OWN_FILE_BYTES`].
    #[error(
        "a user's file is larger than {MAX_OWN_FILE_BYTES} bytes; unitarmor reads at most that"
    )]
    OwnTooLarge,
}

/// A file's bytes, read once and shared: a pass over every unit hands the same read to each
/// look at the file (`[X-Armor]`, `Slice=`, the merge), and a kept merge keeps it, with no
/// copy (a 10,000-rule drop-in is half a megabyte).
pub type Bytes = std::sync::Arc<Vec<u8>>;

/// [`read_limited`], as [`Bytes`].
pub fn read_shared(path: &Path) -> Result<Bytes, ReadError> {
    read_limited(path).map(Bytes::new)
}

/// Reads a unit file, drop-in or named policy the way nothing can make block: `path` (a
/// symlink is followed) must be a regular file, or `/dev/null` (a mask: read as empty). It is
/// opened with `O_NONBLOCK | O_NOCTTY | O_CLOEXEC`, checked again with `fstat` on the open
/// descriptor (it may have been replaced since), and at most [`MAX_FILE_BYTES`] are read.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, ReadError> {
    // Checked before opening too: opening a device can have effects of its own.
    if regular_or_null(&std::fs::metadata(path)?)? {
        return Ok(Vec::new());
    }
    read_opened(path, 0, None)
}

/// [`read_limited`] for a file in user `uid`'s own unit directory: read only if `uid` owns it
/// (checked on the open descriptor), so that a symlink or hard link there to a file the user
/// cannot read (`/etc/shadow`) reads nothing, and no error shows what it holds.
pub fn read_owned(path: &Path, uid: u32) -> Result<Bytes, ReadError> {
    if regular_or_null(&std::fs::metadata(path)?)? {
        return Ok(Bytes::default());
    }
    read_opened(path, 0, Some(uid)).map(Bytes::new)
}

/// [`read_limited`] for a file a directory listing has just shown to be a regular file (not a
/// symlink): it is not looked at before it is opened, only checked on the open descriptor. A
/// pass over a thousand units reads two thousand files, and under emulation every system
/// call counts. It is opened with `O_NOFOLLOW`: a symlink put there since the listing is
/// read as [`read_limited`] reads it, looked at first.
pub fn read_regular(path: &Path) -> Result<Vec<u8>, ReadError> {
    match read_opened(path, libc::O_NOFOLLOW, None) {
        Err(ReadError::Io(e)) if e.raw_os_error() == Some(libc::ELOOP) => read_limited(path),
        r => r,
    }
}

fn read_opened(path: &Path, flags: i32, owner: Option<u32>) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC | flags)
        .open(path)?;
    let meta = file.metadata()?;
    if regular_or_null(&meta)? {
        return Ok(Vec::new());
    }
    if owner.is_some_and(|u| u != meta.uid()) {
        return Err(ReadError::NotOwned(meta.uid()));
    }
    if owner.is_some() && meta.len() > MAX_OWN_FILE_BYTES {
        return Err(ReadError::OwnTooLarge);
    }
    // Room for the whole file and one byte more: one read that returns exactly the length
    // `fstat` gave, short of the room, found the end (a regular file's read stops short only
    // there), so it needs no second read to find it; not one read per doubling of the buffer
    // either (a pass over every unit reads hundreds of files). Anything else (the file grew
    // or shrank meanwhile) is read on to its end.
    let len = meta.len().min(MAX_FILE_BYTES as u64) as usize;
    let mut bytes = vec![0u8; len + 1];
    let n = loop {
        match file.read(&mut bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    bytes.truncate(n);
    if n as u64 != meta.len() {
        file.take((MAX_FILE_BYTES + 1 - n) as u64)
            .read_to_end(&mut bytes)?;
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// Ok(false) for a regular file, Ok(true) for `/dev/null`, an error for anything else.
fn regular_or_null(meta: &std::fs::Metadata) -> Result<bool, ReadError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let t = meta.file_type();
    if t.is_file() {
        return Ok(false);
    }
    if t.is_char_device() && meta.rdev() == libc::makedev(1, 3) {
        return Ok(true);
    }
    Err(ReadError::NotRegular(if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "a special file"
    }))
}

/// Reports a file that could not be read: a warning for one systemd does not read either
/// ([`ReadError::is_absent`]), an error otherwise.
pub fn report_read_error(path: &Path, e: &ReadError, diags: &mut Diagnostics) {
    let src = Source::new(path, 1);
    if e.is_absent() {
        diags.warning(&src, e.to_string());
    } else {
        diags.error(&src, e.to_string());
    }
}

impl ReadError {
    /// A file systemd does not read either: not a regular file, or gone (a symlink to
    /// nothing, a file removed since its directory was listed).
    pub fn is_absent(&self) -> bool {
        match self {
            ReadError::NotRegular(_) | ReadError::NotOwned(_) => true,
            ReadError::Io(e) => e.kind() == std::io::ErrorKind::NotFound,
            ReadError::TooLarge | ReadError::OwnTooLarge => false,
        }
    }
}

/// One assignment in `[X-Armor]`, in file order.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// `ArmorMode=`.
    Mode(Mode, Source),
    /// `ArmorPolicy=RULE` or `ArmorPolicy=@NAME`.
    Policy(String, Source),
    /// `ArmorPolicy=` with nothing after it: forget every rule before it.
    Reset(Source),
    /// `ArmorExempt=NAME...`: lift these implicit protections (the names that parsed).
    Exempt(Vec<Protection>, Source),
    /// `ArmorExempt=` with nothing after it: forget every exemption before it.
    ExemptReset(Source),
}

/// What one file says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DropIn {
    /// Whether the file has an `[X-Armor]` section (even an empty one).
    pub has_section: bool,
    pub entries: Vec<Entry>,
}

/// Parses `bytes`, the contents of `path`. Problems go to `diags`; what could be read is kept.
pub fn parse(path: &Path, bytes: &[u8], diags: &mut Diagnostics) -> DropIn {
    let mut out = DropIn::default();
    if bytes.len() > MAX_FILE_BYTES {
        diags.error(
            &Source::new(path, 1),
            format!(
                "file is {} bytes; unitarmor reads at most {MAX_FILE_BYTES}",
                bytes.len()
            ),
        );
        return out;
    }
    let mut in_section = false;
    let mut lines = bytes.split(|b| *b == b'\n').enumerate().peekable();
    // One name for the whole file, shared by every line's source (a 10,000-rule drop-in's
    // model held a copy of its file's name for each rule).
    let file = std::sync::Arc::new(path.to_path_buf());
    while let Some((index, raw)) = lines.next() {
        let src = Source {
            file: file.clone(),
            line: index + 1,
        };
        // Join continuation lines (a trailing backslash), as systemd does.
        let mut logical = raw.to_vec();
        while logical.ends_with(b"\\") && !is_comment(&logical) {
            logical.pop();
            logical.push(b' ');
            match lines.next() {
                Some((_, next)) => logical.extend_from_slice(next),
                None => break,
            }
            if logical.len() > MAX_LINE_BYTES {
                break;
            }
        }
        if logical.ends_with(b"\r") {
            logical.pop();
        }
        if logical.len() > MAX_LINE_BYTES {
            if in_section {
                diags.error(&src, format!("line is longer than {MAX_LINE_BYTES} bytes"));
            }
            continue;
        }
        if logical.contains(&0) {
            diags.error(&src, "line contains a NUL byte");
            continue;
        }
        let Ok(line) = std::str::from_utf8(&logical) else {
            if in_section {
                diags.error(&src, "line is not valid UTF-8");
            }
            continue;
        };
        let line = line.trim();
        if line.is_empty() || is_comment(line.as_bytes()) {
            continue;
        }
        if line.starts_with('[') {
            match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                Some(name) => {
                    in_section = name == SECTION;
                    if in_section {
                        out.has_section = true;
                    } else if name.eq_ignore_ascii_case(SECTION) || name == "Armor" {
                        diags.warning(
                            &src,
                            format!("section [{name}] is not read by unitarmor; did you mean [{SECTION}]?"),
                        );
                    }
                }
                None => diags.error(&src, format!("invalid section header '{line}'")),
            }
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            diags.error(&src, format!("'{line}' is not KEY=VALUE"));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "ArmorPolicy" if value.is_empty() => out.entries.push(Entry::Reset(src)),
            "ArmorPolicy" => out.entries.push(Entry::Policy(value.to_string(), src)),
            "ArmorExempt" if value.is_empty() => out.entries.push(Entry::ExemptReset(src)),
            "ArmorExempt" => {
                let names = parse_exempt(value, &src, diags);
                if !names.is_empty() {
                    out.entries.push(Entry::Exempt(names, src));
                }
            }
            "ArmorMode" => match Mode::parse(value) {
                Some(m) => out.entries.push(Entry::Mode(m, src)),
                None => diags.error(
                    &src,
                    format!("ArmorMode={value} is not enforce, audit or off"),
                ),
            },
            _ => {
                let hint = did_you_mean(key, KEYS)
                    .map(|k| format!("; did you mean '{k}'?"))
                    .unwrap_or_default();
                diags.error(&src, format!("unknown key '{key}' in [{SECTION}]{hint}"));
            }
        }
    }
    out
}

/// The protection names of an `ArmorExempt=` value (space-separated). An unknown name is an
/// error with a "did you mean" hint; the names that are known are kept.
fn parse_exempt(value: &str, src: &Source, diags: &mut Diagnostics) -> Vec<Protection> {
    let mut out = Vec::new();
    for word in value.split_whitespace() {
        match Protection::parse(word) {
            Some(p) if !out.contains(&p) => out.push(p),
            Some(_) => {}
            None => {
                let hint = did_you_mean(word, Protection::ALL.map(Protection::name))
                    .map(|n| format!("; did you mean '{n}'?"))
                    .unwrap_or_default();
                let all = Protection::ALL.map(Protection::name).join(", ");
                diags.error(
                    src,
                    format!("unknown protection '{word}' in ArmorExempt= (one of {all}){hint}"),
                );
            }
        }
    }
    out
}

fn is_comment(line: &[u8]) -> bool {
    matches!(
        line.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'#' | b';')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> (DropIn, Diagnostics) {
        let mut d = Diagnostics::default();
        let r = parse(Path::new("/x.conf"), s.as_bytes(), &mut d);
        (r, d)
    }

    #[test]
    fn every_line_of_a_file_shares_its_name() {
        let (d, _) = parse_str("[X-Armor]\nArmorPolicy=deny read /a\nArmorPolicy=deny read /b\n");
        let files: Vec<&std::sync::Arc<std::path::PathBuf>> = d
            .entries
            .iter()
            .map(|e| match e {
                Entry::Policy(_, src) => &src.file,
                other => panic!("not a rule: {other:?}"),
            })
            .collect();
        assert_eq!(files.len(), 2);
        assert!(std::sync::Arc::ptr_eq(files[0], files[1]));
        assert_eq!(files[0].as_path(), Path::new("/x.conf"));
    }

    fn policies(d: &DropIn) -> Vec<String> {
        d.entries
            .iter()
            .map(|e| match e {
                Entry::Policy(p, s) => format!("{}:{p}", s.line),
                Entry::Reset(s) => format!("{}:RESET", s.line),
                Entry::Mode(m, s) => format!("{}:mode={}", s.line, m.as_str()),
                Entry::Exempt(v, s) => {
                    let names: Vec<&str> = v.iter().map(|p| p.name()).collect();
                    format!("{}:exempt={}", s.line, names.join(","))
                }
                Entry::ExemptReset(s) => format!("{}:EXEMPT-RESET", s.line),
            })
            .collect()
    }

    #[test]
    fn reads_only_its_section() {
        let (d, diags) = parse_str(
            "[Service]\nArmorPolicy=deny read /nope\n[X-Armor]\n# comment\n; also\nArmorMode=audit\n\
             ArmorPolicy = deny read /etc/shadow\n\n[Install]\nWantedBy=x\n[X-Armor]\nArmorPolicy=\n",
        );
        assert!(diags.0.is_empty(), "{diags:?}");
        assert!(d.has_section);
        assert_eq!(
            policies(&d),
            ["6:mode=audit", "7:deny read /etc/shadow", "12:RESET"]
        );
    }

    #[test]
    fn continuation_lines() {
        let (d, _) =
            parse_str("[X-Armor]\nArmorPolicy=deny write \\\n  /etc/ \\\n /usr/\nArmorMode=off\n");
        assert_eq!(
            policies(&d),
            ["2:deny write    /etc/   /usr/", "5:mode=off"]
        );
    }

    #[test]
    fn bad_keys_and_values() {
        let (_, diags) = parse_str(
            "[X-Armor]\nArmorPolicies=deny read /x\nArmorMode=loud\nnonsense\n[X-Armor\n",
        );
        let msgs: Vec<String> = diags.0.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(msgs[0].starts_with("/x.conf:2: error: unknown key 'ArmorPolicies'"));
        assert!(msgs[0].contains("did you mean 'ArmorPolicy'"));
        assert!(msgs[1].starts_with("/x.conf:3: error: ArmorMode=loud"));
        assert!(msgs[2].starts_with("/x.conf:4: error:"));
        assert!(msgs[3].starts_with("/x.conf:5: error: invalid section header"));
    }

    #[test]
    fn exempt_names() {
        let (d, diags) =
            parse_str("[X-Armor]\nArmorExempt=bpf  mount bpf\nArmorExempt=\nArmorExempt=ptrace\n");
        assert!(diags.0.is_empty(), "{diags:?}");
        assert_eq!(
            policies(&d),
            ["2:exempt=bpf,mount", "3:EXEMPT-RESET", "4:exempt=ptrace"]
        );
    }

    #[test]
    fn unknown_exempt_names_are_errors_with_a_hint() {
        let (d, diags) =
            parse_str("[X-Armor]\nArmorExempt=ptrce signal\nArmorExempt=nope\nArmorExemt=bpf\n");
        let msgs: Vec<String> = diags.0.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].starts_with("/x.conf:2: error: unknown protection 'ptrce' in ArmorExempt="),
            "{msgs:?}"
        );
        assert!(msgs[0].ends_with("did you mean 'ptrace'?"), "{msgs:?}");
        assert!(msgs[1].starts_with("/x.conf:3: error: unknown protection 'nope'"));
        assert!(!msgs[1].contains("did you mean"), "{msgs:?}");
        assert!(msgs[2].contains("did you mean 'ArmorExempt'"), "{msgs:?}");
        // The known name on the bad line still counts; a line with none adds nothing.
        assert_eq!(policies(&d), ["2:exempt=signal"]);
    }

    #[test]
    fn misspelled_section_is_a_warning() {
        let (d, diags) = parse_str("[Armor]\nArmorPolicy=deny read /x\n");
        assert!(!d.has_section);
        assert!(diags.0[0].to_string().contains("did you mean [X-Armor]"));
    }

    #[test]
    fn hostile_bytes() {
        let mut bytes =
            b"[X-Armor]\nArmorPolicy=deny read /a\0b\nArmorPolicy=deny read /\xff\xfe\n".to_vec();
        bytes.extend_from_slice(b"ArmorPolicy=");
        bytes.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES + 10));
        bytes.extend_from_slice(b"\nArmorPolicy=deny read /ok\n");
        let mut diags = Diagnostics::default();
        let d = parse(Path::new("/h"), &bytes, &mut diags);
        assert_eq!(diags.errors().count(), 3, "{diags:?}");
        assert_eq!(policies(&d), ["5:deny read /ok"]);
        let mut diags = Diagnostics::default();
        parse(Path::new("/h"), &vec![b'x'; MAX_FILE_BYTES + 1], &mut diags);
        assert!(diags.has_errors());
    }

    #[test]
    fn reads_are_limited() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.conf");
        std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES + 1]).unwrap();
        assert!(matches!(read_limited(&big), Err(ReadError::TooLarge)));
        std::fs::write(&big, b"[X-Armor]\n").unwrap();
        assert_eq!(read_limited(&big).unwrap(), b"[X-Armor]\n");
        assert!(read_limited(Path::new("/dev/null")).unwrap().is_empty());
        assert!(matches!(
            read_limited(dir.path()),
            Err(ReadError::NotRegular("a directory"))
        ));
        assert!(matches!(
            read_limited(Path::new("/dev/zero")),
            Err(ReadError::NotRegular("a device"))
        ));
    }

    #[test]
    fn a_listed_file_is_read_whole_in_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.conf");
        for len in [0, 1, 4095, 4096, 70_000, MAX_FILE_BYTES] {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            std::fs::write(&f, &text).unwrap();
            assert_eq!(read_regular(&f).unwrap(), text, "{len} bytes");
            assert_eq!(read_limited(&f).unwrap(), text, "{len} bytes");
        }
        std::fs::write(&f, vec![b'#'; MAX_FILE_BYTES + 1]).unwrap();
        assert!(matches!(read_regular(&f), Err(ReadError::TooLarge)));
        // Checked on the open descriptor: what is no regular file is refused all the same.
        assert!(matches!(
            read_regular(dir.path()),
            Err(ReadError::NotRegular("a directory"))
        ));
        // A symlink put where the listing saw a file is followed, as by read_limited.
        let l = dir.path().join("l.conf");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(matches!(read_regular(&l), Err(ReadError::TooLarge)));
        std::fs::remove_file(&l).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &l).unwrap();
        assert!(matches!(
            read_regular(&l),
            Err(ReadError::NotRegular("a device"))
        ));
        // A file whose size says nothing of its contents (procfs) is read to its end.
        let status = read_regular(Path::new("/proc/self/status")).unwrap();
        assert!(status.ends_with(b"\n") && status.len() > 100, "{status:?}");
    }

    #[test]
    fn endless_continuation_terminates() {
        let text = format!(
            "[X-Armor]\nArmorPolicy=deny read /x \\\n{}",
            "a \\\n".repeat(100_000)
        );
        let mut diags = Diagnostics::default();
        parse(Path::new("/h"), text.as_bytes(), &mut diags);
        assert!(diags.has_errors());
    }
}
