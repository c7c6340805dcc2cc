//! Walking the cgroup tree below a unit's cgroup path: the ids to bind, and which unit a
//! cgroup belongs to.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::kernel::{Binding, BIND_SLICE};

/// Where cgroup v2 is mounted.
pub(super) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The unit whose cgroup has id `cgid`, for events decided by a slice's or a template's
/// policy: see [`unit_of_path`]. The path comes from the id itself (a kernfs file handle, as
/// systemd resolves cgroup ids), so it costs the same below a slice of thousands of units.
/// With `subtree`, the cgroup must be in it, and a walk of it is the fallback when the id
/// cannot be opened; without, there is no fallback (a walk of every cgroup per event would be
/// a way to slow the daemon down).
/// The cgroup id of unit `unit`'s own cgroup, if it runs: at the path systemd gives it from
/// its unit files (`Slice=`, or the default slice). `allow signal UNIT` and `allow ptrace UNIT`
/// reach the processes under it.
pub(super) fn peer_cgroup(unit: &str) -> Option<u64> {
    let (_, files) = crate::policy::resolve::unit_files(std::path::Path::new("/"), unit);
    let slice = crate::systemd::slice_from_files(&files)
        .unwrap_or_else(|| crate::systemd::default_slice(unit));
    let path = format!(
        "{CGROUP_ROOT}{}",
        crate::systemd::expected_cgroup(&slice, unit)
    );
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| m.ino())
}

pub(super) fn unit_of_cgroup(subtree: Option<&str>, cgid: u64) -> Option<String> {
    let path = match (path_of_cgroup_id(cgid), subtree) {
        (Some(p), _) => p,
        (None, Some(subtree)) => {
            let (dir, _) = cgroup_dirs(subtree)
                .into_iter()
                .find(|(_, id)| *id == cgid)?;
            dir.to_string_lossy().into_owned()
        }
        (None, None) => return None,
    };
    let rel = path.strip_prefix(CGROUP_ROOT).unwrap_or(&path);
    if let Some(subtree) = subtree {
        if rel != subtree && !rel.starts_with(&format!("{subtree}/")) {
            return None;
        }
    }
    unit_of_path(rel)
}

/// The path of the cgroup with id `cgid`, through `open_by_handle_at` (needs
/// CAP_DAC_READ_SEARCH): a cgroup's file handle is its 64-bit kernfs id.
pub(super) fn path_of_cgroup_id(cgid: u64) -> Option<String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// `struct file_handle` with room for the 8-byte kernfs id.
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        id: u64,
    }
    const FILEID_KERNFS: i32 = 0xfe;
    let mount = std::fs::File::open(CGROUP_ROOT).ok()?;
    let mut h = Handle {
        bytes: 8,
        kind: FILEID_KERNFS,
        id: cgid,
    };
    // SAFETY: `h` is a file_handle header followed by its `bytes` bytes, alive for the call.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            (&mut h as *mut Handle).cast(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a descriptor just returned to us, owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    Some(link.to_string_lossy().into_owned())
}

/// The unit a cgroup path belongs to: the one systemd created, whose cgroup is the
/// shallowest component that is not a slice ([`unit_root`]), unescaped (`_io.service` is
/// `io.service`). Sub-cgroups below it are the unit's own (a delegated unit may name one
/// `ssh.service`; its events are still the unit's). None for a slice.
pub(super) fn unit_of_path(path: &str) -> Option<String> {
    let root = unit_root(path)?;
    let leaf = root.rsplit('/').next()?;
    Some(crate::systemd::cg_unescape(leaf).to_string())
}

/// The unit process `pid` runs in now (its cgroup v2 path in `/proc/PID/cgroup`), or none if
/// it is gone or in no unit. For learn mode, which records the unit a refused signal or trace
/// was aimed at: the process may have exited, and its pid been reused, since.
pub(super) fn unit_of_pid(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    unit_of_path(path)
}

/// unitarmor's own units, which an armored slice leaves unbound.
const OWN_UNITS: [&str; 2] = ["unitarmor.service", "unitarmor-sync.service"];

/// Whether cgroup `name` below cgroup path `parent` is one of unitarmor's own units, which
/// their slice never binds (bpf/binding.h: own_unit). Only below a real slice: a unit's own
/// sub-cgroup named `x.slice/unitarmor.service` is in that unit's tree, and skipping it let
/// an inmate who moved there run unbound after a daemon restart.
fn is_own_unit(parent: &str, name: &str) -> bool {
    parent.ends_with(".slice") && unit_root(parent).is_none() && OWN_UNITS.contains(&name)
}

/// Every cgroup directory at and below the cgroup path `path`, with its id (the inode number).
pub(super) fn cgroup_dirs(path: &str) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(format!("{CGROUP_ROOT}{path}"))];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        let full = dir.to_string_lossy();
        let rel = full.strip_prefix(CGROUP_ROOT).unwrap_or(&full);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter(|e| !is_own_unit(rel, &e.file_name().to_string_lossy()))
                    .map(|e| e.path()),
            );
        }
        out.push((dir, meta.ino()));
    }
    out
}

/// The units running now, each with its cgroup path (`/system.slice/run-u7.scope`): every
/// cgroup directly below a slice that is not a slice itself, whatever slice it is in.
pub(super) fn running_units() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(format!("{CGROUP_ROOT}{rel}")) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("{rel}/{name}");
            if name.ends_with(".slice") {
                stack.push(path);
            } else if rel.is_empty() || rel.ends_with(".slice") {
                out.push((crate::systemd::cg_unescape(&name).to_string(), path));
            }
        }
    }
    out
}

/// The cgroup path of the unit a cgroup path belongs to: down to its first component that is
/// not a slice (`/system.slice/app.service` for `/system.slice/app.service/sub`). None for a
/// slice, which holds units rather than being one.
pub(super) fn unit_root(path: &str) -> Option<&str> {
    let mut end = 0;
    for comp in path.split('/').skip(1) {
        end += 1 + comp.len();
        if !comp.ends_with(".slice") {
            return Some(&path[..end]);
        }
    }
    None
}

/// A user unit's tree's sub-cgroup budget (bpf/unitarmor.h: UA_USER_TREE_CGROUPS).
pub(super) const USER_TREE_CGROUPS: usize = 64;

/// The bindings of a user unit's cgroup at `path` and everything below it to `policy`, all
/// in the tree rooted there (the cgroup_mkdir program binds them so): the shallowest unit of
/// the path is the user's manager, whose tree holds all of the user's units.
///
/// Every cgroup that holds a process (and those above it) is bound; of the empty ones, no
/// more than the kernel's budget lets a user unit's tree hold ([`USER_TREE_CGROUPS`] below
/// the root, the shallowest first): its user can make any number of cgroups at the unit's
/// path before it is armored, and binding all of them would fill `bound`. An empty one left
/// unbound is outside the unit's tree: the unit's processes cannot move into it.
pub(super) fn user_tree_bindings(path: &str, policy: u32) -> Vec<(u64, Binding)> {
    let mut dirs = cgroup_dirs(path);
    let total = dirs.len();
    let populated: Vec<PathBuf> = dirs
        .iter()
        .filter(|(d, _)| {
            std::fs::read_to_string(d.join("cgroup.events"))
                .is_ok_and(|e| e.lines().any(|l| l == "populated 1"))
        })
        .map(|(d, _)| d.clone())
        .collect();
    // Populated first (a populated cgroup's parents are populated too), then by depth.
    dirs.sort_by_key(|(d, _)| (!populated.contains(d), d.components().count()));
    let keep = populated.len().max(USER_TREE_CGROUPS + 1);
    if total > keep {
        tracing::error!(
            "{path}: {} cgroups below it; those that hold processes and the first of the \
             others are bound ({keep} in all), as the budget of a user unit's tree allows",
            total - 1
        );
        dirs.truncate(keep);
    }
    let Some(root) = dirs
        .iter()
        .find(|(d, _)| d.to_string_lossy().strip_prefix(CGROUP_ROOT) == Some(path))
        .map(|(_, id)| *id)
    else {
        return Vec::new();
    };
    dirs.iter()
        .map(|(_, id)| {
            (
                *id,
                Binding {
                    policy,
                    root,
                    flags: crate::kernel::BIND_USER,
                },
            )
        })
        .collect()
}

/// The bindings of a cgroup and everything below it to `policy`: each cgroup in the tree of
/// the unit it belongs to, slices marked as holding units (as the cgroup_mkdir program binds
/// them when they are created).
pub(super) fn cgroup_bindings(path: &str, policy: u32) -> Vec<(u64, Binding)> {
    let dirs = cgroup_dirs(path);
    let ids: HashMap<String, u64> = dirs
        .iter()
        .map(|(d, id)| (d.to_string_lossy().into_owned(), *id))
        .collect();
    dirs.iter()
        .map(|(dir, id)| {
            let full = dir.to_string_lossy();
            let rel = full.strip_prefix(CGROUP_ROOT).unwrap_or(&full);
            let binding = match unit_root(rel) {
                Some(root) => {
                    let root_id = ids
                        .get(&format!("{CGROUP_ROOT}{root}"))
                        .copied()
                        .or_else(|| {
                            std::fs::metadata(format!("{CGROUP_ROOT}{root}"))
                                .ok()
                                .map(|m| m.ino())
                        })
                        .unwrap_or(*id);
                    Binding {
                        policy,
                        root: root_id,
                        flags: 0,
                    }
                }
                None => Binding {
                    policy,
                    root: *id,
                    flags: BIND_SLICE,
                },
            };
            (*id, binding)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{is_own_unit, unit_of_path, unit_root};

    #[test]
    fn events_belong_to_the_unit_systemd_made() {
        // A delegated instance names a sub-cgroup after another unit: still the instance's.
        assert_eq!(
            unit_of_path("/system.slice/system-t.slice/t@a.service/ssh.service").as_deref(),
            Some("t@a.service")
        );
        assert_eq!(
            unit_of_path("/app.slice/web.service/payload/sshd.service/x.scope").as_deref(),
            Some("web.service")
        );
        assert_eq!(
            unit_of_path("/system.slice/_io.service").as_deref(),
            Some("io.service")
        );
        assert_eq!(unit_of_path("/system.slice/system-t.slice"), None);
    }

    #[test]
    fn own_units_only_below_real_slices() {
        assert!(is_own_unit("/system.slice", "unitarmor.service"));
        assert!(is_own_unit(
            "/system.slice/x.slice",
            "unitarmor-sync.service"
        ));
        assert!(!is_own_unit("/system.slice", "app.service"));
        // A unit's sub-cgroup named like a slice holds no unit of its own.
        assert!(!is_own_unit(
            "/system.slice/app.service/x.slice",
            "unitarmor.service"
        ));
        assert!(!is_own_unit(
            "/system.slice/app.service",
            "unitarmor.service"
        ));
    }

    #[test]
    fn unit_roots() {
        assert_eq!(
            unit_root("/system.slice/app.service/sub/x.service"),
            Some("/system.slice/app.service")
        );
        assert_eq!(
            unit_root("/system.slice/system-t.slice/t@a.service"),
            Some("/system.slice/system-t.slice/t@a.service")
        );
        assert_eq!(unit_root("/system.slice/system-t.slice"), None);
        assert_eq!(unit_root("/init.scope"), Some("/init.scope"));
    }
}
