//! Linux capability names, as `cap NAME...` rules spell them (with or without `cap_`, any case).

/// Every capability of Linux 6.12, by number.
pub const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// A capability by number (`CAP_SYS_ADMIN` is 21).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(pub u8);

impl serde::Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Capability {
    /// Parses `sys_admin`, `CAP_SYS_ADMIN`, `Cap_Sys_Admin`...
    pub fn parse(s: &str) -> Result<Capability, String> {
        let lower = s.to_ascii_lowercase();
        let name = lower.strip_prefix("cap_").unwrap_or(&lower);
        match NAMES.iter().position(|n| *n == name) {
            Some(i) => Ok(Capability(i as u8)),
            None => {
                let hint = super::diag::did_you_mean(name, NAMES)
                    .map(|c| format!("; did you mean '{c}'?"))
                    .unwrap_or_default();
                Err(format!("unknown capability '{s}'{hint}"))
            }
        }
    }

    pub fn name(self) -> &'static str {
        NAMES[self.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_case_with_or_without_prefix() {
        assert_eq!(Capability::parse("sys_admin"), Ok(Capability(21)));
        assert_eq!(Capability::parse("CAP_SYS_ADMIN"), Ok(Capability(21)));
        assert_eq!(Capability::parse("Cap_Net_Raw"), Ok(Capability(13)));
        assert_eq!(
            Capability::parse("checkpoint_restore").unwrap().name(),
            "checkpoint_restore"
        );
    }

    #[test]
    fn unknown_gets_a_hint() {
        let e = Capability::parse("sys_admn").unwrap_err();
        assert!(e.contains("did you mean 'sys_admin'"), "{e}");
        let e = Capability::parse("fly").unwrap_err();
        assert!(!e.contains("did you mean"), "{e}");
    }
}
