//! What the running kernel offers, probed at load: whether the BPF LSM can work at all, which
//! optional LSM hooks and traced functions its BTF has, where its `mount_lock` is, and the
//! verifier's statistics on request.

use std::collections::HashSet;

use libbpf_rs::skel::OpenSkel;
use libbpf_rs::ProgramType;

use super::skel;

/// LSM hooks that not every supported kernel has: their programs are loaded only where the
/// kernel's BTF has the hook (`bpf_lsm_NAME`).
pub(super) const OPTIONAL_HOOKS: [&str; 6] = [
    "userns_create",
    "inode_set_acl",
    "inode_remove_acl",
    "file_ioctl_compat",
    "file_truncate",
    "perf_event_open",
];

/// Kernel functions whose programs count name changes for the decision cache (bpf/decided.h):
/// without them, no decision is remembered.
pub(super) const NAME_FUNCS: [&str; 3] = ["d_move", "d_exchange", "d_delete"];

/// Kernel functions the write-access programs trace (bpf/attrs.h): without them, timestamps
/// and extended attributes are not decided by path.
pub(super) const TRACED_FUNCS: [&str; 4] = [
    "mnt_want_write",
    "mnt_want_write_file",
    "mnt_drop_write",
    "mnt_drop_write_file",
];

/// Kernel functions the character-device programs trace (bpf/files.h): without them, the
/// device numbers of a raw-disk driver loaded after the daemon started are not learnt.
pub(super) const CHRDEV_FUNCS: [&str; 3] =
    ["alloc_chrdev_region", "__register_chrdev", "misc_register"];

/// Which of the hooks and functions the programs may need the running kernel's BTF names.
///
/// Read in one pass over the BTF's string section, keeping only the names asked about. The
/// search it replaces looked for each name in the whole 5 MiB file, 16 times: 0.2 s natively
/// and seconds of every daemon start under emulation.
pub(super) struct KernelNames(HashSet<Vec<u8>>);

impl KernelNames {
    /// From the bytes of `/sys/kernel/btf/vmlinux` (none: the kernel names nothing).
    pub(super) fn from_btf(btf: &[u8]) -> Self {
        let wanted: HashSet<Vec<u8>> = OPTIONAL_HOOKS
            .iter()
            .map(|h| format!("bpf_lsm_{h}").into_bytes())
            .chain(probed_funcs().map(|f| f.as_bytes().to_vec()))
            .collect();
        let found = btf_strings(btf)
            .split(|b| *b == 0)
            .filter(|name| wanted.contains(*name))
            .map(<[u8]>::to_vec)
            .collect();
        KernelNames(found)
    }

    /// Whether the kernel has the LSM hook `name` (one of [`OPTIONAL_HOOKS`]).
    pub(super) fn has_hook(&self, name: &str) -> bool {
        debug_assert!(OPTIONAL_HOOKS.contains(&name), "{name} is not probed");
        self.0.contains(format!("bpf_lsm_{name}").as_bytes())
    }

    /// Whether the kernel names the function `name` (one of the probed functions).
    pub(super) fn has_func(&self, name: &str) -> bool {
        debug_assert!(probed_funcs().any(|f| f == name), "{name} is not probed");
        self.0.contains(name.as_bytes())
    }
}

/// Every kernel function whose presence is probed.
fn probed_funcs() -> impl Iterator<Item = &'static str> {
    NAME_FUNCS
        .into_iter()
        .chain(TRACED_FUNCS)
        .chain(CHRDEV_FUNCS)
}

/// The string section of a BTF blob, as its header places it; the whole blob if the header
/// does not say where it is (what the search before this looked through).
fn btf_strings(btf: &[u8]) -> &[u8] {
    const MAGIC: u16 = 0xeb9f;
    let word = |at: usize| -> Option<usize> {
        let b = btf.get(at..at + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let section = || -> Option<&[u8]> {
        let magic = u16::from_ne_bytes([*btf.first()?, *btf.get(1)?]);
        if magic != MAGIC {
            return None;
        }
        // struct btf_header: magic, version, flags, hdr_len, type_off, type_len, str_off,
        // str_len (include/uapi/linux/btf.h).
        let start = word(4)?.checked_add(word(16)?)?;
        btf.get(start..start.checked_add(word(20)?)?)
    };
    section().unwrap_or(btf)
}

/// The address of the kernel's own (not a module's) data symbol `name` in `kallsyms`
/// (/proc/kallsyms' text), if it is there exactly once with an address: the file shows zeros
/// to a reader without CAP_SYSLOG. Modules' symbols, which end in `[module]`, are not it.
pub(super) fn kernel_data_symbol(kallsyms: &str, name: &str) -> Option<u64> {
    let mut found = None;
    for line in kallsyms.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(addr), Some(kind), Some(sym), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if sym != name || !matches!(kind, "D" | "d" | "B" | "b") {
            continue;
        }
        let addr = u64::from_str_radix(addr, 16).ok().filter(|&a| a != 0)?;
        if found.replace(addr).is_some() {
            return None;
        }
    }
    found
}

/// How many arguments the kernel's LSM hook `name` takes, if its BTF (`btf`, parsed once for
/// every hook asked about) says.
pub(super) fn hook_arity(btf: Option<&libbpf_rs::btf::Btf>, name: &str) -> Option<usize> {
    use libbpf_rs::btf::{types, ReferencesType};
    let func: types::Func = btf?.type_by_name(&format!("bpf_lsm_{name}"))?;
    let proto: types::FuncProto = func.referenced_type().try_into().ok()?;
    Some(proto.len())
}

/// Asks the kernel for each program's verifier statistics (instructions processed, states,
/// time) and logs them, one line per program: `UNITARMOR_VERIFIER_STATS=1` in the daemon's
/// environment. For developers weighing what a change costs at load.
pub(super) fn log_verifier_stats(open: &mut skel::OpenUnitarmorSkel<'static>) {
    for mut prog in open.open_object_mut().progs_mut() {
        prog.set_log_level(4); // BPF_LOG_STATS
    }
    fn print(_level: libbpf_rs::PrintLevel, msg: String) {
        if msg.contains("PROG LOAD LOG") {
            let line: Vec<&str> = msg
                .lines()
                .filter(|l| !l.contains("PROG LOAD LOG") || l.starts_with("libbpf: prog"))
                .map(|l| l.trim())
                .collect();
            tracing::info!("verifier: {}", line.join(" "));
        }
    }
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, print)));
}

/// Says why BPF LSM enforcement cannot work on this machine, or nothing if it can.
pub fn check_support() -> Result<(), String> {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").map_err(|e| {
        format!("cannot read /sys/kernel/security/lsm ({e}); is securityfs mounted?")
    })?;
    if !lsm.trim_end_matches('\0').split(',').any(|l| l == "bpf") {
        return Err(format!(
            "the BPF LSM is not active (active LSMs: {}); add 'bpf' to the kernel's lsm= parameter",
            lsm.trim_end_matches('\0')
        ));
    }
    match ProgramType::Lsm.is_supported() {
        Ok(true) => Ok(()),
        Ok(false) => Err(
            "this kernel refuses to load BPF LSM programs (BPF_PROG_TYPE_LSM is not \
                          supported: no CONFIG_BPF_LSM, or no BPF trampolines on this machine)"
                .into(),
        ),
        Err(e) => Err(format!(
            "probing BPF LSM support failed: {e} (is the daemon running as root?)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_own_data_symbol_is_found_once_with_an_address() {
        use super::kernel_data_symbol as sym;
        let k = "ffffffff81000000 T _text\nffffffffb1209680 D mount_lock\n\
                 ffffffffc0001000 d mount_lock\t[somefs]\nffffffffb1200000 T mount_lockx\n";
        assert_eq!(sym(k, "mount_lock"), Some(0xffffffffb1209680));
        assert_eq!(sym(k, "_text"), None, "text, not data");
        assert_eq!(
            sym("0000000000000000 D mount_lock\n", "mount_lock"),
            None,
            "hidden"
        );
        assert_eq!(
            sym(
                "ffffffffb1209680 D mount_lock\nffffffffb1300000 d mount_lock\n",
                "mount_lock"
            ),
            None,
            "twice in the kernel: which is it?"
        );
        assert_eq!(sym("", "mount_lock"), None);
    }

    /// A BTF blob with no types and `strings` as its string section, after some bytes that
    /// are not strings (a type section's worth, holding one of the names).
    fn blob(strings: &[u8]) -> Vec<u8> {
        let types = b"\0bpf_lsm_file_truncate\0".to_vec();
        let mut b = Vec::new();
        b.extend_from_slice(&0xeb9f_u16.to_ne_bytes());
        b.extend_from_slice(&[1, 0]);
        for word in [24, 0, types.len(), types.len(), strings.len()] {
            b.extend_from_slice(&(word as u32).to_ne_bytes());
        }
        b.extend_from_slice(&types);
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn names_come_from_the_string_section_whole() {
        let names = KernelNames::from_btf(&blob(
            b"\0int\0bpf_lsm_userns_create\0d_move\0xd_exchange\0d_delete2\0mnt_want_write",
        ));
        assert!(names.has_hook("userns_create"));
        assert!(names.has_func("d_move"));
        assert!(
            names.has_func("mnt_want_write"),
            "the last string needs no NUL after it"
        );
        // Part of a longer name, a longer name, and a name outside the string section.
        assert!(!names.has_func("d_exchange"));
        assert!(!names.has_func("d_delete"));
        assert!(!names.has_hook("file_truncate"));
        assert!(!names.has_hook("inode_set_acl"));
    }

    #[test]
    fn a_blob_without_a_header_is_searched_whole() {
        let names = KernelNames::from_btf(b"junk\0bpf_lsm_file_truncate\0misc_register\0");
        assert!(names.has_hook("file_truncate"));
        assert!(names.has_func("misc_register"));
        // A header whose string section lies past the end.
        let mut b = blob(b"\0d_move\0");
        b[16] = 0xff;
        assert!(KernelNames::from_btf(&b).has_func("d_move"));
        assert!(!KernelNames::from_btf(&[]).has_func("d_move"));
    }

    #[test]
    fn this_kernel_names_what_any_supported_kernel_does() {
        // The machines these tests run on have BPF and its BTF (a missing file fails).
        let btf = std::fs::read("/sys/kernel/btf/vmlinux").expect("/sys/kernel/btf/vmlinux");
        let names = KernelNames::from_btf(&btf);
        // Linux 6.1, the oldest supported, has all of these.
        assert!(probed_funcs().all(|f| names.has_func(f)));
        assert!(names.has_hook("userns_create"));
        assert!(
            btf_strings(&btf).len() < btf.len(),
            "the header places the strings"
        );
    }
}
