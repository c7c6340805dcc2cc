//! Implicit protections: what every armored unit is refused whatever its rules say, because a
//! root process inside it could otherwise switch its armor off, leave it, or plant code that
//! runs later as root outside it (docs/DESIGN.md, "Threat model"). Each protection has a name
//! that `ArmorExempt=` takes to lift it for a unit that must (`unitarmor check` warns), and a
//! reason that `show` and the journal print. Pure data: the compiler turns the path lists into
//! one table every policy shares (src/compile/shared.rs), and the kernel checks the others by
//! identity.

use std::fmt;

use serde::Serialize;

/// One implicit protection. The discriminant is its bit in the kernel policy header
/// (`ua_policy.protect`) and its offset from [`RULE_PROTECT_BASE`](crate::compile) in events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protection {
    /// Writes to unit files, drop-ins and unitarmor's own configuration.
    UnitFiles = 0,
    /// Writes to kernel settings: sysctls, sysrq, uevent helper, binfmt_misc, securityfs,
    /// bpffs, tracefs, debugfs.
    KernelSettings = 1,
    /// Writes to places the system later runs as root: cron and at spools, ld.so.preload,
    /// PAM, sudoers, SSH keys, udev rules, modprobe configuration, block devices.
    RunsAsRoot = 2,
    /// Writes to cgroup files and directories outside the unit's own cgroup tree (moving a
    /// process out of the unit, clone3 into another cgroup).
    Cgroups = 3,
    /// Connecting to the service manager, the system bus, user managers, container engines,
    /// and abstract sockets the unit did not create.
    Bus = 4,
    /// The bpf() system call.
    Bpf = 5,
    /// mount, umount, move_mount, pivot_root.
    Mount = 6,
    /// Creating user namespaces.
    Userns = 7,
    /// Loading kernel modules and kexec images.
    Modules = 8,
    /// Signals, priorities and resource limits of processes outside the unit, and messages
    /// that claim to come from one (SCM_CREDENTIALS).
    Signal = 9,
    /// ptrace, /proc/PID/mem, process_vm_*, pidfd_getfd, and writes to /proc/PID/ files,
    /// against processes outside the unit.
    Ptrace = 10,
    /// Setting security.*, trusted.* and ACL extended attributes, and inode flags.
    Xattr = 11,
    /// fanotify marks on a whole mount or file system, and permission events.
    Fanotify = 12,
}

impl Protection {
    pub const ALL: [Protection; 13] = [
        Protection::UnitFiles,
        Protection::KernelSettings,
        Protection::RunsAsRoot,
        Protection::Cgroups,
        Protection::Bus,
        Protection::Bpf,
        Protection::Mount,
        Protection::Userns,
        Protection::Modules,
        Protection::Signal,
        Protection::Ptrace,
        Protection::Xattr,
        Protection::Fanotify,
    ];

    /// The name `ArmorExempt=` takes.
    pub fn name(self) -> &'static str {
        match self {
            Protection::UnitFiles => "unit-files",
            Protection::KernelSettings => "kernel-settings",
            Protection::RunsAsRoot => "runs-as-root",
            Protection::Cgroups => "cgroups",
            Protection::Bus => "bus",
            Protection::Bpf => "bpf",
            Protection::Mount => "mount",
            Protection::Userns => "userns",
            Protection::Modules => "modules",
            Protection::Signal => "signal",
            Protection::Ptrace => "ptrace",
            Protection::Xattr => "xattr",
            Protection::Fanotify => "fanotify",
        }
    }

    pub fn parse(s: &str) -> Option<Protection> {
        Protection::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Why every armored unit gets it: what a root process could do without it.
    pub fn reason(self) -> &'static str {
        match self {
            Protection::UnitFiles => {
                "a unit that rewrites unit files or drop-ins (its own [X-Armor] included) turns its armor off at the next daemon-reload, and one that deletes or plants journal files loses or forges the record of its denials"
            }
            Protection::KernelSettings => {
                "kernel settings (core_pattern, modprobe, uevent_helper, binfmt_misc, sysrq, securityfs, bpffs, hibernation, configfs, device drivers and PCI registers) run code as root outside the unit, switch security off or hand a disk to the unit"
            }
            Protection::RunsAsRoot => {
                "cron, at, ld.so.preload, PAM, sudoers, SSH keys, udev, modprobe and package files, /usr and /boot are run or trusted later by root outside the unit; block devices, disk passthrough (SCSI, NVMe, bsg, NVMe over fabrics), /dev/mem and /proc/kcore hold every file, the CPUs' MSRs and I/O ports (iopl, ioperm) reach the kernel and the disk controllers, and netlink messages that need CAP_SYS_ADMIN make disks (NBD, iSCSI) or fake the kernel's uevents"
            }
            Protection::Cgroups => {
                "a process that moves into another cgroup leaves its unit's policy, and a cgroup v1 hierarchy's release_agent runs as root"
            }
            Protection::Bus => {
                "the service manager, the system bus and container engines run code outside the unit on request"
            }
            Protection::Bpf => "bpf() can read, change or detach unitarmor's own programs and maps",
            Protection::Mount => {
                "a mount can show a protected file under another name or hide a read-only one; joining another namespace (setns) undoes PrivateNetwork= and ProtectSystem=; swap on a file the unit reads shows other processes' memory; a frozen or shut-down file system holds every writer, PID 1 and the daemon among them"
            }
            Protection::Userns => {
                "a user namespace grants capabilities that mounts and other escapes need"
            }
            Protection::Modules => "a kernel module or kexec image runs as the kernel",
            Protection::Signal => {
                "signals stop the daemon or make PID 1 reload, reboot or power off, and reboot() \
                 stops them all; limits and messages sent in another process's name stop or \
                 confuse it"
            }
            Protection::Ptrace => {
                "tracing another process runs code as that process, outside the unit; perf events of a whole CPU read every process's stacks and registers; input put into a terminal (TIOCSTI) runs as the shell reading it"
            }
            Protection::Xattr => {
                "security attributes grant file capabilities or change other security modules' decisions"
            }
            Protection::Fanotify => {
                "a privileged fanotify group hands the unit a descriptor for each file other processes open, in their mount namespace (where its rules and InaccessiblePaths= do not reach), and an unanswered permission event stalls every process that opens the file, PID 1 and the daemon among them"
            }
        }
    }

    /// Paths whose writes this protection refuses (matched by the policy's DFA, as write
    /// rules are). Empty for protections the kernel checks by identity.
    pub fn write_paths(self) -> &'static [&'static str] {
        match self {
            Protection::UnitFiles => &[
                "/etc/systemd/",
                // Unit, drop-in, generator, transient and credential directories; sockets
                // here are connected to, not written.
                "/run/systemd/",
                "/usr/lib/systemd/",
                "/lib/systemd/",
                "/usr/local/lib/systemd/",
                "/etc/unitarmor/",
                "/run/unitarmor/",
                "/usr/lib/unitarmor/",
                // What learn mode recorded: a unit that wrote there would choose what
                // `unitarmor suggest` allows it.
                "/var/lib/unitarmor/",
                // The daemon's own output there (a planted link or file would be written
                // through or forge its counters).
                "/var/lib/prometheus/node-exporter/",
                "/etc/dbus-1/",
                "/usr/share/dbus-1/",
                // User managers' unit directories (systemd --user runs what is planted there
                // as that user, outside any armor, at the user's next login or linger start).
                "/etc/xdg/systemd/",
                "/home/*/.config/systemd/",
                "/home/*/.local/share/systemd/",
                // The journal's files, where denials are recorded: deleting or truncating
                // them (or `journalctl --vacuum-size=`) loses every record, and a file put
                // there is merged into what `journalctl` shows, records with the daemon's own
                // `_SYSTEMD_UNIT=` among them.
                "/var/log/journal/",
                "/run/log/journal/",
            ],
            Protection::KernelSettings => &[
                "/proc/sys/",
                "/proc/sysrq-trigger",
                "/sys/kernel/uevent_helper",
                "/sys/kernel/security/",
                "/sys/fs/bpf/",
                "/sys/kernel/tracing/",
                "/sys/kernel/debug/",
                "/sys/module/",
                "/proc/sys/fs/binfmt_misc/",
                // Hibernation (the image holds all memory; resume loads one) and configfs
                // (NVMe and SCSI targets open any disk named there, with no open of ours).
                "/sys/power/",
                "/sys/kernel/config/",
                // Moving a device to another driver (a disk controller to vfio or uio, which
                // hands it to user space), removing or rescanning devices, and PCI devices'
                // registers and memory.
                "/sys/bus/*/drivers/",
                "/sys/bus/*/drivers_probe",
                "/sys/bus/*/drivers_autoprobe",
                "/sys/bus/*/rescan",
                "/sys/devices/**/driver_override",
                "/sys/devices/**/remove",
                "/sys/devices/**/rescan",
                "/sys/devices/**/resource*",
                "/sys/devices/**/config",
                "/sys/devices/**/rom",
                // Synthetic uevents: udev runs its rules for the device again, with
                // variables the writer chooses (SYNTH_ARG_*).
                "/sys/devices/**/uevent",
                "/sys/bus/*/uevent",
                // nfsd's export tables (`/proc/net/rpc/nfsd.export/channel`: export / with
                // no_root_squash to the unit's address) and ksmbd's control (resetting the
                // server so that the unit answers as its user-space daemon): a file server
                // running as root outside the unit serves every file.
                "/proc/*/net/rpc/",
                "/proc/*/task/*/net/rpc/",
                "/sys/class/ksmbd-control/",
                // PCI devices' configuration and memory through procfs (as sysfs's config
                // and resource files above): a disk controller driven from user space reads
                // and writes any disk and, by DMA, any memory.
                "/proc/bus/pci/",
                // SELinux's switches (`enforce`, policy loads), on systems that have it.
                "/sys/fs/selinux/",
                // File systems' own switches (ext4's trigger_fs_error remounts / read-only
                // under errors=remount-ro), and taking disks, controllers, CPUs and memory
                // away from the system: each stalls PID 1 and the daemon with the rest.
                "/sys/fs/ext4/",
                "/sys/fs/xfs/",
                "/sys/fs/btrfs/",
                "/sys/fs/f2fs/",
                "/sys/devices/**/delete",
                "/sys/devices/**/state",
                "/sys/devices/**/delete_controller",
                "/sys/devices/**/reset_controller",
                "/sys/devices/**/online",
            ],
            Protection::RunsAsRoot => &[
                "/etc/crontab",
                "/etc/cron.d/",
                "/etc/cron.hourly/",
                "/etc/cron.daily/",
                "/etc/cron.weekly/",
                "/etc/cron.monthly/",
                "/var/spool/cron/",
                "/var/spool/at/",
                "/etc/ld.so.preload",
                "/etc/ld.so.conf",
                "/etc/ld.so.conf.d/",
                "/etc/pam.d/",
                "/etc/security/",
                "/etc/sudoers",
                "/etc/sudoers.d/",
                "/root/.ssh/",
                "/etc/ssh/",
                "/etc/udev/",
                "/usr/lib/udev/",
                "/lib/udev/",
                "/etc/modprobe.d/",
                "/usr/lib/modprobe.d/",
                "/etc/modules-load.d/",
                "/etc/profile",
                "/etc/profile.d/",
                "/etc/environment",
                "/etc/passwd",
                "/etc/shadow",
                "/etc/group",
                "/etc/gshadow",
                "/etc/init.d/",
                "/etc/rc.local",
                "/etc/sysctl.conf",
                "/etc/sysctl.d/",
                "/etc/tmpfiles.d/",
                "/etc/apt/",
                "/etc/dpkg/",
                "/etc/logrotate.d/",
                "/etc/ld.so.cache",
                "/etc/polkit-1/",
                "/etc/kernel/",
                "/etc/initramfs-tools/",
                "/etc/default/",
                "/etc/bash.bashrc",
                "/etc/environment.d/",
                // Scripts and plugins root's own tools run: pam_motd at each login, DHCP
                // clients at each lease, sudo's plugins, logrotate's and anacron's own
                // configuration, boot-loader scripts, network and ACPI event hooks, completion
                // scripts root's shells source, the files new users start with.
                "/etc/update-motd.d/",
                "/etc/dhcp/",
                "/etc/dhcpcd.enter-hook",
                "/etc/dhcpcd.exit-hook",
                "/etc/sudo.conf",
                "/etc/logrotate.conf",
                "/etc/anacrontab",
                "/etc/grub.d/",
                "/etc/network/",
                "/etc/NetworkManager/dispatcher.d/",
                "/etc/networkd-dispatcher/",
                "/etc/ppp/",
                "/etc/acpi/",
                "/etc/bash_completion.d/",
                "/etc/skel/",
                "/etc/needrestart/",
                "/etc/rc0.d/",
                "/etc/rc1.d/",
                "/etc/rc2.d/",
                "/etc/rc3.d/",
                "/etc/rc4.d/",
                "/etc/rc5.d/",
                "/etc/rc6.d/",
                "/etc/rcS.d/",
                "/etc/apparmor.d/",
                "/etc/selinux/",
                "/root/",
                "/usr/",
                // The top-level names of merged-/usr systems are symlinks into /usr: a
                // directory put in place of /lib64 holds the loader every program runs with.
                "/bin/",
                "/sbin/",
                "/lib/",
                "/lib32/",
                "/lib64/",
                "/libx32/",
                "/boot/",
                "/efi/",
                "/var/lib/dpkg/",
                "/var/lib/rpm/",
                "/run/udev/",
                "/sys/firmware/efi/efivars/",
                // Names in /usr that are links into /etc (the alternatives: awk, pager,
                // editor), and what root's interpreters and libraries read at start:
                // perl's first @INC directory, Python's sitecustomize, OpenSSL's
                // configuration (a provider module it loads) and the trusted certificates.
                "/etc/alternatives/",
                "/etc/perl/",
                "/etc/python3*/",
                "/etc/ssl/",
                "/etc/ca-certificates/",
                "/etc/ca-certificates.conf",
                // Read at boot or by root's tools later: mounts (a bind mount over a daemon's
                // binary), crypttab's keyscripts, binfmt handlers, and the run-time twins of
                // modprobe's, sysctl's and tmpfiles' configuration; the kernel's key upcall
                // (request-key runs what its configuration names, at once); NFS exports;
                // package lists and archives apt installs from; dkms builds.
                "/etc/fstab",
                "/etc/crypttab",
                "/etc/binfmt.d/",
                "/run/binfmt.d/",
                "/run/modprobe.d/",
                "/run/modules-load.d/",
                "/run/sysctl.d/",
                "/run/tmpfiles.d/",
                "/etc/request-key.conf",
                "/etc/request-key.d/",
                "/etc/exports",
                "/etc/exports.d/",
                "/var/lib/nfs/",
                "/var/lib/apt/",
                "/var/cache/apt/",
                "/var/lib/dkms/",
            ],
            _ => &[],
        }
    }

    /// Unix sockets this protection refuses to connect to, in `connect unix:` syntax (matched
    /// by the policy's DFA in the unix-connect class; `@` starts an abstract name). An explicit
    /// `allow connect unix:PATH` lifts the refusal for that path.
    pub fn unix_paths(self) -> &'static [&'static str] {
        match self {
            Protection::Bus => &[
                "/run/systemd/private",
                "/run/systemd/io.systemd.*",
                // journald's varlink socket: RelinquishVar sends every record to the volatile
                // journal in /run, gone at the next boot (the other sockets of the journal's
                // directory stay reachable: IMPLICIT_UNIX_ALLOW).
                "/run/systemd/journal/io.systemd.journal",
                // Varlink services that act for their caller as root: machined registers a
                // machine with the caller's pid as leader (PID 1 moves it into a scope of its
                // own, out of the unit) and opens shells; homed, nsresourced.
                "/run/systemd/machine/",
                "/run/systemd/home/",
                "/run/systemd/nsresource/",
                "/run/dbus/system_bus_socket",
                // Users' run-time directories: their managers and buses, and the sessions
                // and agents that act for them (root's editor servers, gpg-agent).
                "/run/user/",
                // Terminal multiplexers' sessions (tmux, screen): a peer with the owner's uid
                // makes them run commands in the session, as root in root's.
                "/tmp/tmux-*/",
                "/run/screen/",
                // X servers (a client types into every terminal on the display) and SSH
                // agents (a client signs with the owner's keys: `ssh localhost` as the owner,
                // outside the unit). Found by a helper's review of user units.
                "/tmp/.X11-unix/",
                "/tmp/ssh-*/",
                // systemd-oomd's control socket: a peer asks it to watch (and kill) a cgroup.
                "/run/systemd/oom/",
                "/run/docker.sock",
                "/run/containerd/",
                "/run/podman/",
                "/run/libvirt/",
                "/run/incus/",
                "/var/lib/incus/unix.socket",
                "/var/snap/lxd/common/lxd/unix.socket",
                "/var/lib/lxd/unix.socket",
                "/run/crio/",
                "/run/k3s/",
                "/run/snapd.socket",
                "/run/snapd-snap.socket",
                "/run/udev/control",
                // unitarmor's own sync socket: each request re-reads every unit's files.
                "/run/unitarmor/",
                // Abstract sockets of other units (a unit's own are always reachable).
                "@*",
            ],
            _ => &[],
        }
    }
}

impl Protection {
    /// What a unit that `ArmorExempt=` lifts this protection for may do ("this unit may ..."),
    /// for `check`'s warning.
    pub fn lifted(self) -> &'static str {
        match self {
            Protection::UnitFiles => {
                "write unit files, drop-ins, unitarmor's configuration and the journal's files"
            }
            Protection::KernelSettings => {
                "write kernel settings (sysctls, sysrq, the uevent helper, binfmt_misc, securityfs, bpffs, tracefs, debugfs, /sys/power, configfs, driver binding and PCI device files)"
            }
            Protection::RunsAsRoot => {
                "write files that root runs or trusts later (cron and at spools, ld.so.preload, PAM, sudoers, SSH keys, udev rules, modprobe configuration), or open block devices, disk passthrough devices, /dev/mem, /proc/kcore and the CPUs' MSRs, or use I/O ports"
            }
            Protection::Cgroups => {
                "write cgroup files and directories outside its own cgroup tree, or anything in a cgroup v1 hierarchy"
            }
            Protection::Bus => {
                "connect to the service manager, the system bus, user managers, container engines and abstract sockets it did not create"
            }
            Protection::Bpf => "use bpf()",
            Protection::Mount => {
                "mount, unmount, move mounts and pivot_root, snapshot or delete btrfs subvolumes, join other namespaces, swap, freeze or shut down file systems"
            }
            Protection::Userns => "create user namespaces",
            Protection::Modules => "load kernel modules and kexec images",
            Protection::Signal => {
                "signal, renice or set limits of processes outside the unit, send messages in their name, or reboot"
            }
            Protection::Ptrace => {
                "trace processes outside the unit (ptrace, /proc/PID/mem, process_vm_*, pidfd_getfd, perf events of a CPU or the kernel), write their /proc/PID/ files, or put input into terminals"
            }
            Protection::Xattr => {
                "set security.*, trusted.* and ACL extended attributes and inode flags"
            }
            Protection::Fanotify => {
                "make privileged fanotify groups (descriptors for the files other processes open), mark whole mounts or file systems, and ask permission events"
            }
        }
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Sockets every armored unit may connect to: logging and readiness notification, which
/// every service needs.
pub const IMPLICIT_UNIX_ALLOW: [&str; 3] =
    ["/run/systemd/journal/", "/run/systemd/notify", "/dev/log"];

#[cfg(test)]
#[path = "protect_tests.rs"]
mod tests;
