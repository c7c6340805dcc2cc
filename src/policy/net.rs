//! Network rule arguments: address families for `net`, `PROTO:PORT[-PORT]` for `connect`/`bind`,
//! and `unix:/path` or `unix:@abstract-name` socket patterns for `connect`.

use std::fmt;

use serde::Serialize;

use super::pattern::{self, PathPattern};

/// Families `net` rules name, with their AF_* numbers. `raw` means raw IP sockets (SOCK_RAW
/// of AF_INET/AF_INET6), the usual thing to forbid besides `packet`.
pub const FAMILIES: [(&str, u16); 12] = [
    ("unix", 1),
    ("inet", 2),
    ("inet6", 10),
    ("netlink", 16),
    ("packet", 17),
    ("raw", 0xffff),
    ("key", 15),
    ("bluetooth", 31),
    ("can", 29),
    ("vsock", 40),
    ("alg", 38),
    ("xdp", 44),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Family(pub &'static str);

impl Family {
    pub fn parse(s: &str) -> Result<Family, String> {
        let lower = s.to_ascii_lowercase();
        let name = lower.strip_prefix("af_").unwrap_or(&lower);
        FAMILIES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, _)| Family(n))
            .ok_or_else(|| {
                let hint = super::diag::did_you_mean(name, FAMILIES.iter().map(|(n, _)| *n))
                    .map(|c| format!("; did you mean '{c}'?"))
                    .unwrap_or_default();
                format!("unknown address family '{s}'{hint}")
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

/// An address or network a port rule names: IPv6, with IPv4 as IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`), so that one comparison serves both and an IPv4-mapped destination of an
/// IPv6 socket is matched as the IPv4 address it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Network {
    pub addr: [u8; 16],
    /// Leading bits of `addr` that must match (of the IPv6 form).
    pub bits: u8,
}

impl Network {
    /// `10.0.0.0/8`, `127.0.0.1` (one address), `[::1]`, `[fe80::]/10`.
    fn parse(s: &str) -> Result<Network, String> {
        let (host, len) = match s.rsplit_once('/') {
            Some((h, l)) => (h, Some(l)),
            None => (s, None),
        };
        let (addr, max, offset) = if let Some(v6) = host.strip_prefix('[') {
            let v6 = v6
                .strip_suffix(']')
                .ok_or_else(|| format!("'{s}': an IPv6 address ends with ']'"))?;
            let a: std::net::Ipv6Addr = v6
                .parse()
                .map_err(|_| format!("'{v6}' is not an IPv6 address"))?;
            (a.octets(), 128u8, 0u8)
        } else {
            let a: std::net::Ipv4Addr = host.parse().map_err(|_| {
                format!("'{host}' is not an IPv4 address (write IPv6 ones in brackets: [::1])")
            })?;
            (a.to_ipv6_mapped().octets(), 32, 96)
        };
        let bits = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("'/{l}' in '{s}' is not a prefix length (0-{max})"))?,
        };
        let net = Network {
            addr,
            bits: bits + offset,
        };
        if net.masked() != addr {
            return Err(format!(
                "'{s}' has bits set past its prefix length (the network is {})",
                Network {
                    addr: net.masked(),
                    ..net
                }
            ));
        }
        Ok(net)
    }

    /// The network mask, byte by byte.
    pub fn mask(&self) -> [u8; 16] {
        let mut m = [0u8; 16];
        for (i, b) in m.iter_mut().enumerate() {
            let bits = (self.bits as usize).saturating_sub(i * 8).min(8);
            *b = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
        }
        m
    }

    fn masked(&self) -> [u8; 16] {
        let m = self.mask();
        std::array::from_fn(|i| self.addr[i] & m[i])
    }

    fn v4(&self) -> Option<std::net::Ipv4Addr> {
        (self.bits >= 96 && self.addr[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]).then(
            || std::net::Ipv4Addr::new(self.addr[12], self.addr[13], self.addr[14], self.addr[15]),
        )
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.v4() {
            Some(a) if self.bits == 128 => write!(f, "{a}"),
            Some(a) => write!(f, "{a}/{}", self.bits - 96),
            None if self.bits == 128 => write!(f, "[{}]", std::net::Ipv6Addr::from(self.addr)),
            None => write!(f, "[{}]/{}", std::net::Ipv6Addr::from(self.addr), self.bits),
        }
    }
}

/// `tcp:25`, `udp:5000-5100`, `tcp:*`, and with an address or network:
/// `tcp:127.0.0.1:5432`, `tcp:10.0.0.0/8:25`, `tcp:[::1]:80`, `tcp:[::]/0:1-1023`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub proto: Proto,
    pub first: u16,
    pub last: u16,
    /// Any address when `None`.
    pub network: Option<Network>,
}

impl PortRange {
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let (proto, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}' is not PROTO:[ADDRESS:]PORT[-PORT] (e.g. tcp:25)"))?;
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => return Err(format!("unknown protocol '{other}' in '{s}' (tcp or udp)")),
        };
        // The port is after the last ':' (IPv6 addresses are in brackets).
        let (network, ports) = match rest.rsplit_once(':') {
            Some((addr, ports)) => (Some(Network::parse(addr)?), ports),
            None => (None, rest),
        };
        let port = |p: &str| -> Result<u16, String> {
            p.parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("'{p}' in '{s}' is not a port number (1-65535)"))
        };
        let (first, last) = match ports.split_once('-') {
            _ if ports == "*" => (1, u16::MAX),
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(ports)?, port(ports)?),
        };
        if first > last {
            return Err(format!("port range '{s}' is backwards"));
        }
        Ok(PortRange {
            proto,
            first,
            last,
            network,
        })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        write!(f, "{proto}:")?;
        if let Some(n) = &self.network {
            write!(f, "{n}:")?;
        }
        match (self.first, self.last) {
            (1, u16::MAX) => write!(f, "*"),
            (a, b) if a == b => write!(f, "{a}"),
            (a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The prefix of a unix socket argument of `connect`.
pub const UNIX_PREFIX: &str = "unix:";

/// Longest abstract socket name, in bytes (`sun_path` less its leading NUL).
pub const MAX_ABSTRACT_NAME: usize = 107;

/// Whether a `connect` argument names a unix socket (`unix:...`, any case) rather than ports.
pub fn is_unix_arg(s: &str) -> bool {
    s.get(..UNIX_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(UNIX_PREFIX))
}

/// A unix socket a `connect` rule names: `unix:/run/app.sock` (a path pattern, matched as
/// file paths are) or `unix:@name` (an abstract socket; in the name `*` is any bytes and `?`
/// one byte).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SocketPattern {
    /// A socket in the file system.
    Path(PathPattern),
    /// An abstract socket: the glob over its name, without the leading `@`.
    Abstract(String),
}

impl SocketPattern {
    /// Parses `unix:/PATH-PATTERN` or `unix:@NAME-GLOB`.
    pub fn parse(s: &str) -> Result<SocketPattern, String> {
        if !is_unix_arg(s) {
            return Err(format!("'{s}' is not unix:/PATH or unix:@NAME"));
        }
        let rest = &s[UNIX_PREFIX.len()..];
        if let Some(name) = rest.strip_prefix('@') {
            if name.is_empty() {
                return Err(format!("'{s}' names no abstract socket (write unix:@NAME)"));
            }
            if name.contains('\0') {
                return Err(format!("abstract socket name in '{s}' contains a NUL byte"));
            }
            let fixed = name.bytes().filter(|b| *b != b'*').count();
            if fixed > MAX_ABSTRACT_NAME {
                return Err(format!(
                    "'{s}' can never match: abstract socket names are at most \
                     {MAX_ABSTRACT_NAME} bytes"
                ));
            }
            Ok(SocketPattern::Abstract(name.to_string()))
        } else if rest.starts_with('/') {
            PathPattern::parse(rest)
                .map(SocketPattern::Path)
                .map_err(|e| format!("{s}: {e}"))
        } else {
            Err(format!(
                "'{s}' is neither unix:/ABSOLUTE/PATH nor unix:@ABSTRACT-NAME"
            ))
        }
    }

    /// The pattern as an anchored regular expression over bytes, in the dialect of
    /// [`PathPattern::to_regex`]. An abstract name is matched with its `@`: the regex of
    /// `unix:@app*` matches the bytes `@app-1`, so the kernel feeds `@` and the name through
    /// the same DFA as socket paths (which start with `/`).
    pub fn to_regex(&self) -> String {
        match self {
            SocketPattern::Path(p) => p.to_regex(),
            SocketPattern::Abstract(name) => {
                let mut re = String::from("^@");
                let mut star = false;
                for ch in name.chars() {
                    match ch {
                        '*' if star => continue,
                        '*' => re.push_str(".*"),
                        '?' => re.push('.'),
                        _ => {
                            let mut buf = [0; 4];
                            re.push_str(&pattern::regex_escape(ch.encode_utf8(&mut buf)));
                        }
                    }
                    star = ch == '*';
                }
                re.push('$');
                re
            }
        }
    }

    /// The socket as the kernel names it: the path pattern, or `@` and the abstract name.
    pub fn text(&self) -> String {
        match self {
            SocketPattern::Path(p) => p.as_str().to_string(),
            SocketPattern::Abstract(name) => format!("@{name}"),
        }
    }
}

impl fmt::Display for SocketPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{UNIX_PREFIX}{}", self.text())
    }
}

impl Serialize for SocketPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use regex_automata::dfa::{dense, Automaton};
    use regex_automata::util::syntax;
    use regex_automata::Input;

    use super::*;

    fn matches(pattern: &str, name: &[u8]) -> bool {
        let re = SocketPattern::parse(pattern).unwrap().to_regex();
        let dfa = dense::Builder::new()
            .syntax(
                syntax::Config::new()
                    .unicode(false)
                    .utf8(false)
                    .dot_matches_new_line(true),
            )
            .build(&re)
            .unwrap();
        dfa.try_search_fwd(&Input::new(name)).unwrap().is_some()
    }

    #[test]
    fn socket_paths_match_like_file_paths() {
        let p = SocketPattern::parse("unix:/run/app//app.sock").unwrap();
        assert_eq!(p.to_string(), "unix:/run/app/app.sock");
        assert_eq!(
            p.to_regex(),
            PathPattern::parse("/run/app/app.sock").unwrap().to_regex()
        );
        assert!(matches("unix:/run/app/", b"/run/app/x.sock"));
        assert!(matches("unix:/run/user/*/bus", b"/run/user/1000/bus"));
        assert!(!matches("unix:/run/user/*/bus", b"/run/user/1/2/bus"));
        assert!(!matches("unix:/run/app.sock", b"@/run/app.sock"));
    }

    #[test]
    fn abstract_names_are_byte_globs_behind_an_at() {
        let p = SocketPattern::parse("unix:@app-*").unwrap();
        assert_eq!(p, SocketPattern::Abstract("app-*".into()));
        assert_eq!(p.to_string(), "unix:@app-*");
        assert_eq!(p.text(), "@app-*");
        assert!(p.to_regex().starts_with("^@"));
        assert!(matches("unix:@app-*", b"@app-1/x\n\xff"));
        assert!(!matches("unix:@app-*", b"app-1"));
        assert!(!matches("unix:@app-*", b"/app-1"));
        assert!(matches("unix:@a?c", b"@a/c"));
        assert!(!matches("unix:@a?c", b"@abbc"));
        assert!(matches("unix:@x.y+(z)", b"@x.y+(z)"));
        assert!(!matches("unix:@x.y", b"@xzy"));
        assert!(matches("unix:@**", b"@"));
        assert!(matches("unix:@/tmp/.X11-unix/X*", b"@/tmp/.X11-unix/X0"));
    }

    #[test]
    fn bad_socket_patterns() {
        assert!(SocketPattern::parse("unix:")
            .unwrap_err()
            .contains("neither"));
        assert!(SocketPattern::parse("unix:run/x")
            .unwrap_err()
            .contains("neither"));
        assert!(SocketPattern::parse("unix:@")
            .unwrap_err()
            .contains("names no"));
        assert!(SocketPattern::parse("unix:/a/../b")
            .unwrap_err()
            .contains("'..' component"));
        let long = format!("unix:@{}", "a".repeat(MAX_ABSTRACT_NAME + 1));
        assert!(SocketPattern::parse(&long)
            .unwrap_err()
            .contains("never match"));
        let ok = format!("unix:@{}*", "a".repeat(MAX_ABSTRACT_NAME));
        assert!(SocketPattern::parse(&ok).is_ok());
        assert!(is_unix_arg("UNIX:/x") && !is_unix_arg("tcp:1") && !is_unix_arg("uni"));
    }

    #[test]
    fn ports() {
        let r = PortRange::parse("tcp:25").unwrap();
        assert_eq!((r.proto, r.first, r.last), (Proto::Tcp, 25, 25));
        assert_eq!(
            PortRange::parse("UDP:5000-5100").unwrap().to_string(),
            "udp:5000-5100"
        );
        assert!(PortRange::parse("tcp:0").is_err());
        assert!(PortRange::parse("tcp:70000").is_err());
        assert!(PortRange::parse("tcp:9-3").is_err());
        assert!(PortRange::parse("sctp:1").is_err());
        assert!(PortRange::parse("25").is_err());
        assert_eq!(PortRange::parse("tcp:*").unwrap().to_string(), "tcp:*");
    }

    #[test]
    fn addresses_and_networks() {
        let r = PortRange::parse("tcp:127.0.0.1:5432").unwrap();
        let n = r.network.unwrap();
        assert_eq!(n.bits, 128);
        assert_eq!(&n.addr[10..], &[0xff, 0xff, 127, 0, 0, 1]);
        assert_eq!(r.to_string(), "tcp:127.0.0.1:5432");
        let r = PortRange::parse("tcp:0.0.0.0/0:25").unwrap();
        assert_eq!(r.network.unwrap().bits, 96, "all of IPv4, none of IPv6");
        assert_eq!(r.to_string(), "tcp:0.0.0.0/0:25");
        let r = PortRange::parse("udp:10.0.0.0/8:1-1023").unwrap();
        assert_eq!(r.network.unwrap().mask()[12], 0xff);
        assert_eq!(r.network.unwrap().mask()[13], 0);
        let r = PortRange::parse("tcp:[::]:8080").unwrap();
        assert_eq!(
            (r.network.unwrap().addr, r.network.unwrap().bits),
            ([0; 16], 128)
        );
        assert_eq!(r.to_string(), "tcp:[::]:8080");
        let r = PortRange::parse("tcp:[fe80::]/10:*").unwrap();
        assert_eq!(r.network.unwrap().mask()[..2], [0xff, 0xc0]);
        assert_eq!(r.to_string(), "tcp:[fe80::]/10:*");
        assert!(PortRange::parse("tcp:10.0.0.1/8:25")
            .unwrap_err()
            .contains("the network is 10.0.0.0/8"));
        assert!(PortRange::parse("tcp:10.0.0.0/33:25").is_err());
        assert!(PortRange::parse("tcp:::1:25")
            .unwrap_err()
            .contains("brackets"));
        assert!(PortRange::parse("tcp:[::1:25").is_err());
        assert!(PortRange::parse("tcp:example.com:25").is_err());
    }

    #[test]
    fn families() {
        assert_eq!(Family::parse("AF_PACKET").unwrap(), Family("packet"));
        assert!(Family::parse("pakcet")
            .unwrap_err()
            .contains("did you mean 'packet'"));
    }
}
