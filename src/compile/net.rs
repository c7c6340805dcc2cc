//! `net`, `connect tcp:/udp:` and `bind` rules compiled to what bpf/net.h reads: one verdict
//! per address family (as capabilities, caps.rs), and a short list of port rules. Pure, like
//! the rest of the compiler.
//!
//! The classes' usual semantics: a matching `deny` wins; an `allow` makes an allow-list, which
//! refuses what no allow rule names; an `audit` rule reports what nothing refuses. Allow-lists
//! are kept apart where an administrator would expect them apart:
//! - `net`: one allow-list of families. Unix sockets stay allowed by it unless a rule denies
//!   them (logging and readiness notification need them; which unix sockets a unit may reach is
//!   the `connect unix:` class's business). A raw socket (`SOCK_RAW`) is decided by its family
//!   and by `raw`: both must allow it, so `allow net inet` does not allow raw IP sockets.
//!   Netlink is the exception: SOCK_RAW is its ordinary type (getifaddrs(), sd-netlink).
//! - ports: one allow-list per operation and protocol, so `allow connect tcp:5432` leaves UDP
//!   (DNS) and binds alone.

use serde::{Deserialize, Serialize};

use super::{RULE_NONE, RULE_NOT_ALLOWED};
use crate::policy::net::{self as pnet, Proto};
use crate::policy::{Action, Class, Policy, Rule, Target};

/// Family slots in the kernel's table; the last is raw sockets of any family.
pub const NET_SLOTS: usize = 64;
pub const NET_RAW: usize = 63;
/// Port rule entries one policy may have (UA_PORT_RULES).
pub const PORT_RULES: usize = 64;
/// Port-rule kinds: bit 0 bind (else connect), bit 1 udp (else tcp).
pub const PORT_BIND: u8 = 1;
pub const PORT_UDP: u8 = 2;
/// The kernel's default ephemeral port range, which a bind of port 0 takes a port from.
pub const EPHEMERAL: (u16, u16) = (32768, 60999);
const AF_NETLINK: usize = 16;

/// One port range of a rule, as the kernel matches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortEntry {
    pub rule: u32,
    pub first: u16,
    pub last: u16,
    pub action: Action,
    pub kind: u8,
    /// IPv6 (IPv4 mapped), network order; matches when `address & mask == addr`.
    pub addr: [u8; 16],
    pub mask: [u8; 16],
    /// The `from=` pattern of its rule (a bit of a process's mask, from.rs), or 0: any process.
    pub from: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetTable {
    /// Per family slot: the deciding rule, [`RULE_NOT_ALLOWED`] or [`RULE_NONE`].
    #[serde(with = "super::arrays")]
    pub family_rule: [u32; NET_SLOTS],
    /// Bit per slot whose rule is an `audit` rule.
    pub family_audit: u64,
    pub ports: Vec<PortEntry>,
    /// Bit per port-rule kind that is an allow-list.
    pub port_allowlist: u8,
    /// Per port-rule kind, the `from=` patterns whose processes it is an allow-list for.
    pub port_from_allow: [u8; 4],
}

impl Default for NetTable {
    fn default() -> Self {
        NetTable {
            family_rule: [RULE_NONE; NET_SLOTS],
            family_audit: 0,
            ports: Vec::new(),
            port_allowlist: 0,
            port_from_allow: [0; 4],
        }
    }
}

/// The slot of a family name (`raw` is [`NET_RAW`]).
fn slot(name: &str) -> usize {
    pnet::FAMILIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| if *nr == 0xffff { NET_RAW } else { *nr as usize })
        .unwrap_or(NET_RAW - 1)
}

const AF_UNIX: usize = 1;

/// Per family slot, the verdicts of the `net` rules `applies` says hold for a process (as
/// caps.rs's); `from=` tables are made so (from.rs).
pub(super) fn families_for(
    policy: &Policy,
    applies: impl Fn(&Rule) -> bool,
) -> ([u32; NET_SLOTS], u64) {
    super::caps::slot_verdicts(
        policy,
        Class::Net,
        |t, s| matches!(t, Target::Families(v) if v.iter().any(|f| slot(f.0) == s)),
        |s| s == AF_UNIX,
        applies,
    )
}

impl NetTable {
    /// Refuses every socket and every connect and bind (see `refuse_all`).
    pub fn refuse_all() -> Self {
        NetTable {
            family_rule: [RULE_NOT_ALLOWED; NET_SLOTS],
            family_audit: 0,
            ports: Vec::new(),
            port_allowlist: 0b1111,
            port_from_allow: [0; 4],
        }
    }

    /// Whether the kernel has anything to decide.
    pub fn any(&self) -> bool {
        self.family_rule.iter().any(|r| *r != RULE_NONE)
            || !self.ports.is_empty()
            || self.port_allowlist != 0
            || self.port_from_allow.iter().any(|m| *m != 0)
    }

    /// The table of `policy`'s net, connect (tcp:/udp:) and bind rules. Families are for a
    /// process no `from=` pattern names (the others' are [`families_for`] tables); port
    /// entries carry their rule's `from=` bit. An allow rule that did not parse makes its
    /// allow-list: allowing less than written, never more. Errors when the port rules do not
    /// fit the kernel's list.
    pub fn of(policy: &Policy) -> Result<Self, String> {
        let mut t = NetTable::default();
        t.families(policy);
        t.port_rules(policy)?;
        Ok(t)
    }

    fn families(&mut self, policy: &Policy) {
        (self.family_rule, self.family_audit) = families_for(policy, |r| r.from.is_none());
    }

    fn port_rules(&mut self, policy: &Policy) -> Result<(), String> {
        let froms = super::from::Froms::of(policy).map_err(|e| e.to_string())?;
        // An allow rule that did not parse: its protocol is unknown, so both are allow-lists.
        if policy.broken_allow.contains(&Class::Connect) {
            self.port_allowlist |= 1 << 0 | 1 << PORT_UDP;
        }
        if policy.broken_allow.contains(&Class::Bind) {
            self.port_allowlist |= 1 << PORT_BIND | 1 << (PORT_BIND | PORT_UDP);
        }
        for (i, rule) in policy.rules.iter().enumerate() {
            let bind = match rule.class {
                Class::Connect => 0,
                Class::Bind => PORT_BIND,
                _ => continue,
            };
            let Target::Ports(ports) = &rule.target else {
                continue;
            };
            let from = froms.bit(rule).map_or(0, |b| 1u8 << b);
            // An allow rule that names no port (its own were dropped: a template's or a
            // prefix's widened from=) still makes both protocols' allow-lists, of nothing.
            if ports.is_empty() && rule.action == Action::Allow {
                for kind in [bind, bind | PORT_UDP] {
                    if from == 0 {
                        self.port_allowlist |= 1 << kind;
                    } else {
                        self.port_from_allow[kind as usize] |= from;
                    }
                }
            }
            for p in ports {
                let kind = bind | if p.proto == Proto::Udp { PORT_UDP } else { 0 };
                if rule.action == Action::Allow && from == 0 {
                    self.port_allowlist |= 1 << kind;
                } else if rule.action == Action::Allow {
                    self.port_from_allow[kind as usize] |= from;
                }
                let (addr, mask) = match &p.network {
                    Some(n) => (n.addr, n.mask()),
                    None => ([0; 16], [0; 16]),
                };
                self.ports.push(PortEntry {
                    rule: i as u32,
                    first: p.first,
                    last: p.last,
                    action: rule.action,
                    kind,
                    addr: std::array::from_fn(|j| addr[j] & mask[j]),
                    mask,
                    from,
                });
            }
        }
        // Deny entries first, then allow, then audit: the kernel's scan stops at the first
        // deny or audit match (bpf/net.h).
        self.ports.sort_by_key(|e| match e.action {
            Action::Deny => 0,
            Action::Allow => 1,
            Action::Audit => 2,
        });
        if self.ports.len() > PORT_RULES {
            return Err(format!(
                "{} port ranges in connect and bind rules, more than the {PORT_RULES} one \
                 policy may have",
                self.ports.len()
            ));
        }
        Ok(())
    }

    /// What the kernel decides for a connect (`bind` false) or bind of `proto` to `addr`
    /// (IPv6 or IPv4-mapped) and `port` by a process of `from=` mask `mask`, as bpf/net.h's
    /// decide_port(): for host tests and `unitarmor check`.
    pub fn decide_port(
        &self,
        bind: bool,
        proto: Proto,
        addr: [u8; 16],
        port: u16,
        mask: u8,
    ) -> super::Verdict {
        let kind =
            if bind { PORT_BIND } else { 0 } | if proto == Proto::Udp { PORT_UDP } else { 0 };
        // A bind of port 0 is the kernel's pick from the ephemeral range: a deny entry that
        // overlaps it matches, another entry only one that covers all of it (bpf/net.h).
        let (lo, hi) = if bind && port == 0 {
            EPHEMERAL
        } else {
            (port, port)
        };
        let covers = |e: &&PortEntry| match e.action {
            Action::Deny => e.first <= hi && e.last >= lo,
            _ => e.first <= lo && e.last >= hi,
        };
        let first = |action: Action| {
            self.ports
                .iter()
                .filter(|e| e.kind == kind && e.action == action)
                .filter(|e| e.from == 0 || e.from & mask != 0)
                .filter(covers)
                .find(|e| (0..16).all(|j| addr[j] & e.mask[j] == e.addr[j]))
                .map(|e| e.rule)
        };
        if let Some(r) = first(Action::Deny) {
            super::Verdict::Deny(r)
        } else if (self.port_allowlist & (1 << kind) != 0
            || self.port_from_allow[kind as usize] & mask != 0)
            && first(Action::Allow).is_none()
        {
            super::Verdict::Deny(RULE_NOT_ALLOWED)
        } else if let Some(r) = first(Action::Audit) {
            super::Verdict::Audit(r)
        } else {
            super::Verdict::Allow
        }
    }

    /// What the kernel decides for creating a socket of family number `family` (`raw`:
    /// SOCK_RAW), as bpf/net.h's socket_create program.
    pub fn decide_socket(&self, family: usize, raw: bool) -> super::Verdict {
        Self::decide_socket_with(family, raw, |s| match self.family_rule[s] {
            RULE_NONE => super::Verdict::Allow,
            r if self.family_audit & (1 << s) != 0 => super::Verdict::Audit(r),
            r => super::Verdict::Deny(r),
        })
    }

    /// [`NetTable::decide_socket`] with the verdict of each slot given (for a process of a
    /// `from=` pattern: from.rs).
    pub fn decide_socket_with(
        family: usize,
        raw: bool,
        verdict: impl Fn(usize) -> super::Verdict,
    ) -> super::Verdict {
        let s = if family >= NET_RAW {
            NET_RAW - 1
        } else {
            family
        };
        // Netlink's SOCK_RAW is its ordinary type: `raw` is about every other family's.
        let raw = raw && family != AF_NETLINK;
        match (verdict(s), raw) {
            (v @ super::Verdict::Deny(_), _) | (v, false) => v,
            (v, true) => match verdict(NET_RAW) {
                d @ super::Verdict::Deny(_) => d,
                super::Verdict::Allow => v,
                a => {
                    if v == super::Verdict::Allow {
                        a
                    } else {
                        v
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Verdict;
    use super::*;

    const INET: usize = 2;
    const INET6: usize = 10;
    const PACKET: usize = 17;

    fn table(rules: &[&str]) -> NetTable {
        NetTable::of(&Policy::of(rules)).unwrap()
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        std::net::Ipv4Addr::from(a).to_ipv6_mapped().octets()
    }

    #[test]
    fn families_deny_and_allow_list() {
        let t = table(&["deny net packet raw"]);
        assert_eq!(t.decide_socket(PACKET, false), Verdict::Deny(0));
        assert_eq!(t.decide_socket(INET, false), Verdict::Allow);
        assert_eq!(
            t.decide_socket(INET, true),
            Verdict::Deny(0),
            "raw of any family"
        );
        let t = table(&["allow net inet inet6"]);
        assert_eq!(t.decide_socket(INET6, false), Verdict::Allow);
        assert_eq!(
            t.decide_socket(PACKET, false),
            Verdict::Deny(RULE_NOT_ALLOWED)
        );
        assert_eq!(t.decide_socket(AF_UNIX, false), Verdict::Allow, "logging");
        assert_eq!(
            t.decide_socket(INET, true),
            Verdict::Deny(RULE_NOT_ALLOWED),
            "raw must be allowed too"
        );
        assert_eq!(t.decide_socket(45, false), Verdict::Deny(RULE_NOT_ALLOWED));
        let t = table(&["allow net inet raw"]);
        assert_eq!(t.decide_socket(INET, true), Verdict::Allow);
        let t = table(&["allow net inet", "deny net unix"]);
        assert_eq!(t.decide_socket(AF_UNIX, false), Verdict::Deny(1));
    }

    #[test]
    fn families_audit() {
        let t = table(&["audit net packet inet", "deny net inet"]);
        assert_eq!(t.decide_socket(PACKET, false), Verdict::Audit(0));
        assert_eq!(t.decide_socket(INET, false), Verdict::Deny(1));
        let t = table(&["audit net raw"]);
        assert_eq!(t.decide_socket(INET, true), Verdict::Audit(0));
        assert_eq!(t.decide_socket(INET, false), Verdict::Allow);
        assert!(!table(&["deny read /x"]).any());
    }

    #[test]
    fn ports_deny_allow_audit() {
        let t = table(&[
            "deny connect tcp:25",
            "allow connect tcp:127.0.0.1:5432 tcp:[::1]:5432",
            "audit connect udp:53",
        ]);
        let local = v4([127, 0, 0, 1]);
        assert_eq!(
            t.decide_port(false, Proto::Tcp, local, 25, 0),
            Verdict::Deny(0)
        );
        assert_eq!(
            t.decide_port(false, Proto::Tcp, local, 5432, 0),
            Verdict::Allow
        );
        let mut v6local = [0; 16];
        v6local[15] = 1;
        assert_eq!(
            t.decide_port(false, Proto::Tcp, v6local, 5432, 0),
            Verdict::Allow
        );
        assert_eq!(
            t.decide_port(false, Proto::Tcp, v4([10, 0, 0, 1]), 5432, 0),
            Verdict::Deny(RULE_NOT_ALLOWED)
        );
        assert_eq!(
            t.decide_port(false, Proto::Udp, local, 53, 0),
            Verdict::Audit(2)
        );
        assert_eq!(
            t.decide_port(false, Proto::Udp, local, 123, 0),
            Verdict::Allow,
            "the tcp allow-list leaves udp alone"
        );
        assert_eq!(
            t.decide_port(true, Proto::Tcp, local, 8080, 0),
            Verdict::Allow
        );
    }

    #[test]
    fn networks() {
        let t = table(&["deny connect tcp:0.0.0.0/0:25", "allow bind tcp:[::]:8080"]);
        assert_eq!(
            t.decide_port(false, Proto::Tcp, v4([192, 0, 2, 1]), 25, 0),
            Verdict::Deny(0)
        );
        assert_eq!(
            t.decide_port(
                false,
                Proto::Tcp,
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                25,
                0
            ),
            Verdict::Allow,
            "0.0.0.0/0 is all of IPv4 only"
        );
        assert_eq!(
            t.decide_port(true, Proto::Tcp, [0; 16], 8080, 0),
            Verdict::Allow
        );
        assert_eq!(
            t.decide_port(true, Proto::Tcp, v4([0, 0, 0, 0]), 8080, 0),
            Verdict::Deny(RULE_NOT_ALLOWED),
            "[::] is the IPv6 wildcard, not 0.0.0.0"
        );
        assert_eq!(
            t.decide_port(true, Proto::Tcp, [0; 16], 0, 0),
            Verdict::Deny(RULE_NOT_ALLOWED),
            "a port the kernel picks is not allowed by a bind allow-list"
        );
    }

    #[test]
    fn port_zero_is_the_ephemeral_range() {
        let t = table(&["deny bind tcp:*", "deny bind udp:40000"]);
        assert_eq!(
            t.decide_port(true, Proto::Tcp, [0; 16], 0, 0),
            Verdict::Deny(0)
        );
        assert_eq!(
            t.decide_port(true, Proto::Udp, [0; 16], 0, 0),
            Verdict::Deny(1),
            "the kernel may pick the one port a deny rule names"
        );
        assert_eq!(
            table(&["deny connect tcp:*"]).decide_port(false, Proto::Tcp, [0; 16], 0, 0),
            Verdict::Allow,
            "a connect to port 0 is to port 0"
        );
        let t = table(&["allow bind tcp:1024-65535"]);
        assert_eq!(
            t.decide_port(true, Proto::Tcp, [0; 16], 0, 0),
            Verdict::Allow
        );
    }

    #[test]
    fn netlink_raw_is_not_raw() {
        let t = table(&["deny net packet raw"]);
        assert_eq!(t.decide_socket(AF_NETLINK, true), Verdict::Allow);
        let t = table(&["allow net inet inet6 netlink"]);
        assert_eq!(t.decide_socket(AF_NETLINK, true), Verdict::Allow);
        assert_eq!(t.decide_socket(INET, true), Verdict::Deny(RULE_NOT_ALLOWED));
    }

    /// A prefix's (or a template's) allow rule whose from= widens names no port: the widened
    /// programs are held to an allow-list of nothing, never given the ports of another
    /// member's programs.
    #[test]
    fn an_allow_rule_of_no_port_is_an_allow_list_of_nothing() {
        use crate::policy::{specifiers::UnitName, Rule, Source};
        let unit = UnitName::new("run-.scope");
        let mut policy = Policy::of(&["allow bind tcp:443"]);
        policy.rules.push(
            Rule::parse(
                "allow bind tcp:8080 from=/opt/%N/srv",
                Some(&unit),
                Source::new("/p.conf", 2),
            )
            .unwrap(),
        );
        let t = NetTable::of(&policy).unwrap();
        let any = [0; 16];
        assert_eq!(
            t.decide_port(true, Proto::Tcp, any, 8080, 1),
            Verdict::Deny(RULE_NOT_ALLOWED),
            "the widened programs get no port of a member's"
        );
        assert_eq!(
            t.decide_port(true, Proto::Udp, any, 53, 1),
            Verdict::Deny(RULE_NOT_ALLOWED)
        );
        assert_eq!(
            t.decide_port(true, Proto::Tcp, any, 8080, 0),
            Verdict::Deny(RULE_NOT_ALLOWED)
        );
    }

    #[test]
    fn from_allow_lists_are_their_processes() {
        let t = table(&["allow connect tcp:5432 from=/usr/bin/psql"]);
        assert_eq!(t.ports[0].from, 1);
        let local = v4([127, 0, 0, 1]);
        assert_eq!(
            t.decide_port(false, Proto::Tcp, local, 25, 0),
            Verdict::Allow
        );
        assert_eq!(
            t.decide_port(false, Proto::Tcp, local, 25, 1),
            Verdict::Deny(RULE_NOT_ALLOWED)
        );
        assert_eq!(
            t.decide_port(false, Proto::Tcp, local, 5432, 1),
            Verdict::Allow
        );
        let t = table(&["allow net inet from=/usr/bin/x"]);
        assert_eq!(
            t.decide_socket(INET, false),
            Verdict::Allow,
            "not for others"
        );
    }

    #[test]
    fn too_many_port_ranges() {
        let ports: Vec<String> = (1..=65).map(|p| format!("tcp:{p}")).collect();
        let rule = format!("deny connect {}", ports.join(" "));
        let err = NetTable::of(&Policy::of(&[rule.as_str()])).unwrap_err();
        assert!(err.contains("65 port ranges"), "{err}");
    }
}
