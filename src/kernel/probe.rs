//! What the running kernel offers, probed at load: whether the BPF LSM can work at all, which
//! optional LSM hooks and traced functions its BTF has, and the verifier's statistics on request.

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

/// Kernel functions the write-access programs trace (bpf/attrs.h): without them, timestamps
/// and extended attributes are not decided by path.
/// Kernel functions whose programs count name changes for the decision cache (bpf/decided.h):
/// without them, no decision is remembered.
pub(super) const NAME_FUNCS: [&str; 3] = ["d_move", "d_exchange", "d_delete"];

pub(super) const TRACED_FUNCS: [&str; 4] = [
    "mnt_want_write",
    "mnt_want_write_file",
    "mnt_drop_write",
    "mnt_drop_write_file",
];

/// Whether the running kernel's BTF has the LSM hook `name`.
pub(super) fn kernel_has_hook(btf: &[u8], name: &str) -> bool {
    let needle = format!("\0bpf_lsm_{name}\0");
    btf.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Whether the running kernel's BTF names the function `name` (a traced function).
pub(super) fn kernel_has_func(btf: &[u8], name: &str) -> bool {
    let needle = format!("\0{name}\0");
    btf.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// How many arguments the kernel's LSM hook `name` takes, if its BTF says.
pub(super) fn hook_arity(name: &str) -> Option<usize> {
    use libbpf_rs::btf::{types, Btf, ReferencesType};
    let btf = Btf::from_vmlinux().ok()?;
    let func: types::Func = btf.type_by_name(&format!("bpf_lsm_{name}"))?;
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
