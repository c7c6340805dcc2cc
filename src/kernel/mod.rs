//! The kernel side, seen from user space: loads and attaches the programs of
//! `bpf/unitarmor.bpf.c` (through the generated libbpf-rs skeleton), keeping those the running
//! kernel can take (probed in `probe.rs`), pins them under [`PIN_DIR`] so that enforcement
//! outlives the daemon, writes compiled policies and cgroup bindings into their maps, and hands
//! out the event ring buffer.

pub mod abi;
mod bindings;
mod counters;
mod decided;
mod devices;
mod identity;
mod peers;
pub mod pending;
mod pins;
mod probe;
mod regions;
mod tables;
mod usage;

pub use counters::Hits;
pub use pins::{disarm, pinned, wait_unloaded, PIN_DIR};
pub use probe::check_support;
pub use tables::Loaded;
pub use usage::Limits;

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::path::Path;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject};

use counters::random_key;
use identity::{mount_devs, superblock_dev};
use probe::{
    hook_arity, log_verifier_stats, KernelNames, CHRDEV_FUNCS, NAME_FUNCS, OPTIONAL_HOOKS,
    TRACED_FUNCS,
};

#[allow(
    clippy::all,
    clippy::pedantic,
    dead_code,
    unused_imports,
    non_camel_case_types
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/unitarmor.skel.rs"));
}

use skel::types::{ua_config, ua_file_id};
use skel::{UnitarmorSkel, UnitarmorSkelBuilder};

/// Policy ids run from 1 to this minus one (bpf/unitarmor.h: UA_MAX_POLICIES); units get
/// those below [`REFUSE_ID`].
pub const MAX_POLICIES: u32 = 1024;
/// The last policy id, never handed to a unit: a policy that refuses everything, for units the
/// daemon has no free id for (they are refused, not left unarmored, until one is free).
pub const REFUSE_ID: u32 = MAX_POLICIES - 1;
/// Key length of the `expected` map (bpf/unitarmor.h: UA_CGROUP_PATH_MAX).
pub const CGROUP_PATH_MAX: usize = 256;
/// A cgroup that holds units rather than processes (bpf/unitarmor.h: UA_BIND_SLICE).
pub const BIND_SLICE: u32 = 1;

/// On a template's name in `expected`: a new instance waits for a policy of its own
/// (bpf/unitarmor.h: UA_BIND_INSTANCES).
pub const BIND_INSTANCES: u32 = 4;
/// A user unit's tree (bpf/unitarmor.h: UA_BIND_USER): its sub-cgroup budget is smaller.
pub const BIND_USER: u32 = 8;
/// Most sub-cgroups all unit trees together may have in `bound` (UA_SUB_CGROUPS_DEFAULT, half
/// of the map): the other half is kept for the cgroups systemd makes for units.
const SUB_CGROUPS_MAX: u32 = 32768;
/// Where systemd 255 and later keep systemd-executor (the first program a unit's process
/// executes; see bpf/binding.h).
const EXECUTOR: [&str; 2] = [
    "/usr/lib/systemd/systemd-executor",
    "/lib/systemd/systemd-executor",
];

/// What a cgroup is bound to (bpf/unitarmor.h: `struct ua_binding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub policy: u32,
    /// Cgroup id of the unit's own cgroup: the unit is that cgroup's tree.
    pub root: u64,
    /// [`BIND_SLICE`] or 0.
    pub flags: u32,
}

/// Loaded programs and their maps.
pub struct Kernel {
    skel: UnitarmorSkel<'static>,
    /// The programs' counting filter in front of `bound` (bpf/maps.h: bound_filter), in this
    /// process's mapping of their .bss, [`bindings::FILTER_SLOTS`] counters.
    bound_filter: *mut u32,
    /// The programs' filter in front of `unit_dirs` (bpf/maps.h: unit_dir_filter), in the same
    /// mapping, [`pending::DIR_FILTER_SLOTS`] bytes; only this process writes it.
    dir_filter: *mut u8,
    links: Vec<(String, Link)>,
    /// Optional hooks this kernel lacks (their programs were not loaded).
    pub missing_hooks: Vec<&'static str>,
    /// The kernel's inode_setattr hook takes (dentry, attr), as on 6.1, not (idmap, dentry, attr).
    setattr_2: bool,
    /// The kernel's perf_event_open hook takes (type) alone, as 6.12 does, not (attr, type).
    perf_1: bool,
    /// systemd-executor files the programs know, newest first (device, inode).
    executors: Vec<(u32, u64)>,
    /// Most sub-cgroups per unit tree (bpf/unitarmor.h: ua_config).
    sub_cgroups: u32,
    /// Keys the kernel's hash of repeated events' subjects (random per daemon).
    key: [u64; 2],
    /// Runs of `cells` in use, and each installed policy's (start, length).
    regions: std::cell::RefCell<regions::Regions>,
    /// Installed policies that have `cap` rules.
    cap_policies: std::cell::RefCell<std::collections::HashSet<u32>>,
    /// Installed policies that have net, connect or bind rules.
    net_policies: std::cell::RefCell<std::collections::HashSet<u32>>,
    /// Installed policies' peer units (`allow signal`, `allow ptrace`).
    peers: std::cell::RefCell<HashMap<u32, Vec<peers::Peer>>>,
    /// The programs that count name changes are attached: opens' decisions may be remembered
    /// (bpf/decided.h).
    decided_on: bool,
    /// Policy header writes so far (bpf/maps.h: `epochs`, whose header counts only this daemon
    /// writes).
    tables_epoch: std::cell::Cell<u64>,
    /// The kernel's `mount_lock`, whose count tells the decision cache that no mount changed
    /// (bpf/decided.h); 0 if /proc/kallsyms does not show it.
    mount_lock: u64,
    /// Cgroups that were bound pending and have been bound or unbound since (pending.rs).
    released: std::cell::RefCell<Vec<u64>>,
}

/// The kernel's `mount_lock`, from /proc/kallsyms; 0, and said, if it is not there.
fn mount_lock() -> u64 {
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    probe::kernel_data_symbol(&kallsyms, "mount_lock").unwrap_or_else(|| {
        tracing::info!(
            "the kernel's mount_lock is not in /proc/kallsyms (it needs CAP_SYSLOG): the decision \
             cache reads a file's mounts at every open"
        );
        0
    })
}

/// Views a plain-old-data value as bytes, for map keys and values.
fn bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is one of the #[repr(C)] integer-only types generated from bpf/unitarmor.h
    // (or an integer); every byte of it is initialized and any byte pattern is valid.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// Whether two cgroup paths have one `expected` key (long paths with one last component).
pub fn same_key(a: &str, b: &str) -> bool {
    a == b || matches!((cgroup_key(a), cgroup_key(b)), (Ok(x), Ok(y)) if x == y)
}

/// Zero-padded `expected` key for a cgroup path or a unit name. A path too long for the key
/// is keyed by its last component (a unit's name as systemd escapes it, or a template's
/// slice), as the cgroup_mkdir program looks up such a cgroup when PID 1 makes it
/// (bpf/binding.h: long_path): a unit name is unique in the service manager.
pub fn cgroup_key(path: &str) -> Result<[u8; CGROUP_PATH_MAX]> {
    let key = match path.rsplit_once('/') {
        Some((_, leaf)) if path.len() >= CGROUP_PATH_MAX => leaf,
        _ => path,
    };
    if key.len() >= CGROUP_PATH_MAX || key.is_empty() {
        bail!(
            "cgroup path {path} is {} bytes; the limit is {}",
            path.len(),
            CGROUP_PATH_MAX - 1
        );
    }
    let mut key_bytes = [0u8; CGROUP_PATH_MAX];
    key_bytes[..key.len()].copy_from_slice(key.as_bytes());
    Ok(key_bytes)
}

impl Kernel {
    /// Opens and loads the programs (the verifier runs here); nothing is attached yet.
    /// `sub_cgroups` is the most cgroups one unit may create below its own.
    pub fn load(sub_cgroups: u32) -> Result<Kernel> {
        // The skeleton borrows its object for its whole life; the daemon keeps it until exit.
        let object: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = UnitarmorSkelBuilder::default()
            .open(object)
            .context("opening the BPF object")?;
        if std::env::var_os("UNITARMOR_VERIFIER_STATS").is_some() {
            log_verifier_stats(&mut open);
        }
        let names =
            KernelNames::from_btf(&std::fs::read("/sys/kernel/btf/vmlinux").unwrap_or_default());
        let mut missing_hooks: Vec<&'static str> = OPTIONAL_HOOKS
            .into_iter()
            .filter(|h| !names.has_hook(h))
            .collect();
        for hook in &missing_hooks {
            let p = &mut open.progs;
            match *hook {
                "userns_create" => p.ua_userns_create.set_autoload(false),
                "inode_set_acl" => p.ua_inode_set_acl.set_autoload(false),
                "inode_remove_acl" => p.ua_inode_remove_acl.set_autoload(false),
                "file_ioctl_compat" => p.ua_file_ioctl_compat.set_autoload(false),
                "file_truncate" => p.ua_file_truncate.set_autoload(false),
                "perf_event_open" => {
                    p.ua_perf_event_open.set_autoload(false);
                    p.ua_perf_event_open_1.set_autoload(false);
                }
                _ => {}
            }
        }
        // The kernel's types, parsed once for the hooks whose arguments differ by version.
        let types = libbpf_rs::btf::Btf::from_vmlinux().ok();
        // inode_setattr took a leading idmap argument in 6.3: keep the variant this kernel has.
        let setattr_2 = hook_arity(types.as_ref(), "inode_setattr") == Some(2);
        if setattr_2 {
            open.progs.ua_inode_setattr.set_autoload(false);
        } else {
            open.progs.ua_inode_setattr_2.set_autoload(false);
        }
        // perf_event_open lost its attr argument in later kernels (6.12 has it so).
        let perf_1 = hook_arity(types.as_ref(), "perf_event_open") == Some(1);
        drop(types);
        if perf_1 {
            open.progs.ua_perf_event_open.set_autoload(false);
        } else {
            open.progs.ua_perf_event_open_1.set_autoload(false);
        }
        if !CHRDEV_FUNCS.iter().all(|f| names.has_func(f)) {
            open.progs.ua_chrdev_region.set_autoload(false);
            open.progs.ua_register_chrdev.set_autoload(false);
            open.progs.ua_misc_register.set_autoload(false);
            missing_hooks.push("alloc_chrdev_region");
        }
        let traced = TRACED_FUNCS.iter().all(|f| names.has_func(f));
        if !traced {
            let p = &mut open.progs;
            p.ua_want_write.set_autoload(false);
            p.ua_want_write_file.set_autoload(false);
            p.ua_drop_write.set_autoload(false);
            p.ua_drop_write_file.set_autoload(false);
            missing_hooks.push("mnt_want_write");
        }
        // The set-up marks are kept across daemons: a unit PID 1 is setting up while a new
        // daemon replaces the pins keeps its mark, and the marks' map is never freed while
        // programs may be creating marks in it.
        let marks = Path::new(PIN_DIR).join("maps/task_marks");
        if marks.exists() {
            if let Err(e) = open.maps.task_marks.reuse_pinned_map(&marks) {
                tracing::warn!(
                    "cannot reuse the set-up marks of the earlier daemon ({e}); starting afresh"
                );
            }
        }
        if !NAME_FUNCS.iter().all(|f| names.has_func(f)) {
            let p = &mut open.progs;
            for prog in [
                &mut p.ua_moving,
                &mut p.ua_moved,
                &mut p.ua_exchanging,
                &mut p.ua_exchanged,
                &mut p.ua_deleting,
                &mut p.ua_deleted,
            ] {
                prog.set_autoload(false);
            }
            missing_hooks.push("d_move");
        }
        let mut skel = open.load().context("loading the BPF programs (verifier)")?;
        let cells = regions::Regions::new(skel.maps.cells.max_entries());
        // Without the filter's mapping a binding could not be counted, and the programs would
        // take every cgroup for unbound: no enforcement at all. Refuse to start instead.
        // Taken out of the skeleton: the kernel changes these counters under it, so no
        // reference to them is kept, only the pointer.
        let (bound_filter, dir_filter) = skel
            .maps
            .bss_data
            .take()
            .map(|bss| {
                // Of the lengths the programs use (a different one does not compile).
                let filter: *mut [u32; bindings::FILTER_SLOTS] =
                    std::ptr::addr_of_mut!(bss.bound_filter);
                let dirs: *mut [u8; pending::DIR_FILTER_SLOTS] =
                    std::ptr::addr_of_mut!(bss.unit_dir_filter);
                (filter.cast::<u32>(), dirs.cast::<u8>())
            })
            .context("the BPF object's .bss (the bound cgroups' filter) is not mapped")?;
        let mut kernel = Kernel {
            skel,
            bound_filter,
            dir_filter,
            links: Vec::new(),
            missing_hooks,
            setattr_2,
            perf_1,
            executors: Vec::new(),
            sub_cgroups,
            key: random_key(),
            regions: std::cell::RefCell::new(cells),
            cap_policies: Default::default(),
            net_policies: Default::default(),
            peers: Default::default(),
            decided_on: false,
            tables_epoch: Default::default(),
            mount_lock: mount_lock(),
            released: Default::default(),
        };
        kernel.write_config()?;
        kernel.note_executor()?;
        kernel.install_protections()?;
        Ok(kernel)
    }

    /// Tells the programs which file systemd-executor is (by device and inode, so that a
    /// copy elsewhere is not it). Called at start and after each reload: an upgrade of systemd
    /// replaces the file, and PID 1 runs the old one until it re-executes, so the last two
    /// are kept.
    pub fn note_executor(&mut self) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let Some((path, meta)) = EXECUTOR
            .iter()
            .find_map(|p| std::fs::metadata(p).ok().map(|m| (Path::new(p), m)))
        else {
            return Ok(());
        };
        let current = (superblock_dev(path, meta.dev(), &mount_devs()), meta.ino());
        if self.executors.first() == Some(&current) {
            return Ok(());
        }
        self.executors.insert(0, current);
        self.executors.truncate(2);
        self.write_config()
    }

    /// Most sub-cgroups one unit tree may have.
    pub fn sub_cgroups(&self) -> u32 {
        self.sub_cgroups
    }

    pub(super) fn write_config(&self) -> Result<()> {
        let mut cfg = ua_config {
            tree_cgroups_max: self.sub_cgroups,
            sub_cgroups_max: SUB_CGROUPS_MAX,
            key: self.key,
            cap_policies: self.cap_policies.borrow().len() as u32,
            net_policies: self.net_policies.borrow().len() as u32,
            decided_on: u32::from(self.decided_on),
            mount_lock: self.mount_lock,
            ..Default::default()
        };
        for (slot, &(dev, ino)) in cfg.executor.iter_mut().zip(&self.executors) {
            *slot = ua_file_id { ino, dev, pad: 0 };
        }
        self.skel
            .maps
            .settings
            .update(bytes(&0u32), bytes(&cfg), MapFlags::ANY)
            .context("writing the settings map")
    }

    /// Attaches the cgroup_mkdir/cgroup_rmdir programs: from here on new cgroups of armored
    /// units are bound as they are created.
    pub fn attach_binding(&mut self) -> Result<()> {
        let progs = &self.skel.progs;
        for (name, prog) in [
            ("cgroup_mkdir", &progs.ua_cgroup_mkdir),
            ("cgroup_rmdir", &progs.ua_cgroup_rmdir),
        ] {
            let link = prog.attach().with_context(|| format!("attaching {name}"))?;
            self.links.push((name.to_string(), link));
        }
        Ok(())
    }

    /// Attaches the LSM programs: from here on bound cgroups are enforced.
    pub fn attach_hooks(&mut self) -> Result<()> {
        let p = &self.skel.progs;
        let setattr = if self.setattr_2 {
            &p.ua_inode_setattr_2
        } else {
            &p.ua_inode_setattr
        };
        let perf = if self.perf_1 {
            &p.ua_perf_event_open_1
        } else {
            &p.ua_perf_event_open
        };
        let traced = !self.missing_hooks.contains(&"mnt_want_write");
        // Passthrough devices: the tracing programs first, then what /proc/devices and
        // /proc/misc already list, so that a driver registering in between is not missed.
        if !self.missing_hooks.contains(&"alloc_chrdev_region") {
            for (name, prog) in [
                ("alloc_chrdev_region", &p.ua_chrdev_region),
                ("__register_chrdev", &p.ua_register_chrdev),
                ("misc_register", &p.ua_misc_register),
            ] {
                let link = prog
                    .attach()
                    .with_context(|| format!("attaching the {name} tracing program"))?;
                self.links.push((name.to_string(), link));
            }
        }
        self.note_passthrough_devices()?;
        let hooks = [
            // Before the hooks that read what they remember (bpf/attrs.h).
            ("mnt_want_write", &p.ua_want_write),
            ("mnt_want_write_file", &p.ua_want_write_file),
            ("mnt_drop_write", &p.ua_drop_write),
            ("mnt_drop_write_file", &p.ua_drop_write_file),
            ("task_alloc", &p.ua_task_alloc),
            ("bprm_committed_creds", &p.ua_bprm_committed_creds),
            ("file_open", &p.ua_file_open),
            ("file_free_security", &p.ua_file_free),
            ("inode_create", &p.ua_inode_create),
            ("inode_symlink", &p.ua_inode_symlink),
            ("inode_link", &p.ua_inode_link),
            ("inode_rename", &p.ua_inode_rename),
            ("inode_unlink", &p.ua_inode_unlink),
            ("inode_rmdir", &p.ua_inode_rmdir),
            ("file_receive", &p.ua_file_receive),
            ("bprm_check_security", &p.ua_bprm_check),
            ("mmap_file", &p.ua_mmap_file),
            ("file_mprotect", &p.ua_file_mprotect),
            ("path_mknod", &p.ua_path_mknod),
            ("path_mkdir", &p.ua_path_mkdir),
            ("path_rmdir", &p.ua_path_rmdir),
            ("path_unlink", &p.ua_path_unlink),
            ("path_symlink", &p.ua_path_symlink),
            ("path_link", &p.ua_path_link),
            ("path_rename", &p.ua_path_rename),
            ("path_truncate", &p.ua_path_truncate),
            ("file_truncate", &p.ua_file_truncate),
            ("path_chmod", &p.ua_path_chmod),
            ("path_chown", &p.ua_path_chown),
            ("unix_stream_connect", &p.ua_unix_stream_connect),
            ("unix_may_send", &p.ua_unix_may_send),
            ("task_kill", &p.ua_task_kill),
            ("task_setnice", &p.ua_task_setnice),
            ("task_setioprio", &p.ua_task_setioprio),
            ("task_setscheduler", &p.ua_task_setscheduler),
            ("task_setrlimit", &p.ua_task_setrlimit),
            ("task_prctl", &p.ua_task_prctl),
            ("socket_sendmsg", &p.ua_socket_sendmsg),
            ("netlink_send", &p.ua_netlink_send),
            ("socket_create", &p.ua_socket_create),
            ("socket_connect", &p.ua_socket_connect),
            ("socket_bind", &p.ua_socket_bind),
            ("socket_listen", &p.ua_socket_listen),
            ("socket_setsockopt", &p.ua_socket_setsockopt),
            ("file_fcntl", &p.ua_file_fcntl),
            ("ptrace_access_check", &p.ua_ptrace_access_check),
            ("ptrace_traceme", &p.ua_ptrace_traceme),
            ("userns_create", &p.ua_userns_create),
            ("kernel_module_request", &p.ua_kernel_module_request),
            ("kernel_load_data", &p.ua_kernel_load_data),
            ("kernel_read_file", &p.ua_kernel_read_file),
            ("bpf", &p.ua_bpf),
            ("sb_mount", &p.ua_sb_mount),
            ("sb_umount", &p.ua_sb_umount),
            ("move_mount", &p.ua_move_mount),
            ("sb_pivotroot", &p.ua_sb_pivotroot),
            ("path_notify", &p.ua_path_notify),
            ("perf_event_open", perf),
            ("capable", &p.ua_capable),
            ("inode_permission", &p.ua_inode_permission),
            ("inode_mkdir", &p.ua_inode_mkdir),
            ("inode_setattr", setattr),
            ("inode_setxattr", &p.ua_inode_setxattr),
            ("inode_removexattr", &p.ua_inode_removexattr),
            ("inode_set_acl", &p.ua_inode_set_acl),
            ("inode_remove_acl", &p.ua_inode_remove_acl),
            ("file_ioctl", &p.ua_file_ioctl),
            ("file_ioctl_compat", &p.ua_file_ioctl_compat),
        ];
        for (name, prog) in hooks {
            if self.missing_hooks.contains(&name) || (!traced && TRACED_FUNCS.contains(&name)) {
                continue;
            }
            let link = prog
                .attach()
                .with_context(|| format!("attaching the {name} LSM program"))?;
            self.links.push((name.to_string(), link));
        }
        self.attach_name_counters()
    }

    /// Writes the majors of the passthrough devices `/proc/devices` lists into `raw_majors`,
    /// and the minors of those `/proc/misc` lists into `raw_misc`.
    fn note_passthrough_devices(&self) -> Result<()> {
        let maps = &self.skel.maps;
        for (file, map, numbers) in [
            (
                "/proc/devices",
                &maps.raw_majors,
                devices::passthrough_majors as fn(&str) -> _,
            ),
            (
                "/proc/misc",
                &maps.raw_misc,
                devices::passthrough_misc_minors,
            ),
        ] {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            for n in numbers(&text) {
                map.update(bytes(&n), bytes(&1u8), MapFlags::ANY)
                    .with_context(|| format!("writing the {} map", map.name().to_string_lossy()))?;
            }
        }
        Ok(())
    }

    /// A handle on the event ring buffer, for a reader thread.
    pub fn events(&self) -> Result<MapHandle> {
        MapHandle::try_from(&self.skel.maps.events).context("duplicating the events map")
    }
}

#[cfg(test)]
mod tests {
    /// Every LSM program in bpf/ is in the list the daemon attaches (a program that is loaded
    /// but never attached decides nothing, silently). `inode_setattr` and `perf_event_open`
    /// have two variants each, one picked at load time and attached under the hook's name.
    #[test]
    fn every_lsm_program_is_attached() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let attach = std::fs::read_to_string(root.join("src/kernel/mod.rs")).unwrap();
        for entry in std::fs::read_dir(root.join("bpf")).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for hook in text.split("SEC(\"lsm/").skip(1) {
                let name = &hook[..hook.find('"').unwrap()];
                assert!(
                    attach.contains(&format!("(\"{name}\", ")),
                    "lsm/{name} is never attached (src/kernel/mod.rs)"
                );
            }
        }
    }

    /// A path the key holds is its own key; a longer one is keyed by its last component, as
    /// bpf/binding.h looks it up; a name is its own key.
    #[test]
    fn long_cgroup_paths_are_keyed_by_their_leaf() {
        let key = |p: &str| {
            let k = super::cgroup_key(p).unwrap();
            String::from_utf8(k.iter().copied().take_while(|&b| b != 0).collect()).unwrap()
        };
        assert_eq!(key("/system.slice/a.service"), "/system.slice/a.service");
        assert_eq!(key("a@.service"), "a@.service");
        let slices = (1..=12).fold(String::new(), |acc, i| {
            format!("{acc}/{}.slice", "s".repeat(i * 3))
        });
        let exactly = format!("/{}", "x".repeat(super::CGROUP_PATH_MAX - 2));
        assert_eq!(key(&exactly), exactly, "255 bytes still fit");
        let long = format!("{slices}/_io.service");
        assert!(long.len() >= super::CGROUP_PATH_MAX);
        assert_eq!(key(&long), "_io.service");
        let leaf_too_long = format!("{slices}/{}.service", "y".repeat(260));
        assert!(super::cgroup_key(&leaf_too_long).is_err());
    }
}
