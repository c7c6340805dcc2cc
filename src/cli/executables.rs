//! What `from=` names on disk, for `unitarmor check`: the kernel matches the file a process
//! runs, so a pattern naming a symlink, or a script (whose process runs its interpreter),
//! matches nothing. Reads the file system, unlike the pure lint (policy/lint.rs).

use std::io::Read;
use std::path::Path;

use crate::policy::diag::Diagnostics;
use crate::policy::Policy;

/// Warns for every `from=` of `policy` that names, below `root`, a symlink or a script.
/// Patterns with globs are left alone: they may name many files.
pub fn check(root: &Path, policy: &Policy, diags: &mut Diagnostics) {
    let mut seen = Vec::new();
    for r in &policy.rules {
        let Some(from) = r.from.as_ref().map(|f| f.as_str()) else {
            continue;
        };
        if seen.contains(&from) || from.contains(['*', '?']) || from.ends_with('/') {
            continue;
        }
        seen.push(from);
        if let Some(why) = not_an_executable(root, from.trim_start_matches('/')) {
            diags.warning(&r.source, format!("from={from} matches no process: {why}"));
        }
    }
}

/// Why processes never have `rel` (below `root`) as their executable, if they never do.
fn not_an_executable(root: &Path, rel: &str) -> Option<String> {
    let path = &root.join(rel);
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        let to = std::fs::canonicalize(path).map_or_else(
            |_| "a file that does not exist".into(),
            |p| p.display().to_string(),
        );
        return Some(format!("it is a symlink; name the file it leads to ({to})"));
    }
    // A directory on the way is a symlink (/bin on a merged-/usr system): the kernel names the
    // file by its real path.
    let base = std::fs::canonicalize(root).ok()?;
    let real = std::fs::canonicalize(path).ok()?;
    if real != base.join(rel) {
        let shown = real
            .strip_prefix(&base)
            .map_or(real.clone(), |r| Path::new("/").join(r));
        return Some(format!("the kernel names that file {}", shown.display()));
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let first = head[..n].split(|b| *b == b'\n').next()?;
    let interp = first.strip_prefix(b"#!")?;
    let interp = String::from_utf8_lossy(interp).trim().to_string();
    Some(format!(
        "it is a script, and a script's process runs its interpreter ({interp})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_and_scripts_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("real"), b"\x7fELF...").unwrap();
        std::fs::write(bin.join("script"), b"#!/usr/bin/perl -w\nprint;\n").unwrap();
        std::os::unix::fs::symlink("real", bin.join("link")).unwrap();
        std::os::unix::fs::symlink("usr/bin", dir.path().join("bin")).unwrap();
        let policy = Policy::of(&[
            "allow read /x from=/usr/bin/real",
            "allow read /x from=/usr/bin/script",
            "allow read /y from=/usr/bin/script",
            "allow read /x from=/usr/bin/link",
            "allow read /x from=/usr/bin/*",
            "allow read /x from=/usr/bin/missing",
            "allow read /x from=/bin/real",
        ]);
        let mut diags = Diagnostics::default();
        check(dir.path(), &policy, &mut diags);
        let w: Vec<String> = diags.0.iter().map(|d| d.to_string()).collect();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("from=/usr/bin/script matches no process: it is a script"));
        assert!(w[0].contains("(/usr/bin/perl -w)"), "{w:?}");
        assert!(w[1].contains("from=/usr/bin/link matches no process: it is a symlink"));
        assert!(w[1].ends_with("usr/bin/real)"), "{w:?}");
        assert!(
            w[2].ends_with(
                "from=/bin/real matches no process: the kernel names that file /usr/bin/real"
            ),
            "{w:?}"
        );
    }
}
