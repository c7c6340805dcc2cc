//! Network rule arguments: address families for `net`, `PROTO:PORT[-PORT]` for `connect`/`bind`.

use std::fmt;

use serde::Serialize;

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

/// `tcp:25`, `udp:5000-5100`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PortRange {
    pub proto: Proto,
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let (proto, ports) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}' is not PROTO:PORT[-PORT] (e.g. tcp:25)"))?;
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => return Err(format!("unknown protocol '{other}' in '{s}' (tcp or udp)")),
        };
        let port = |p: &str| -> Result<u16, String> {
            p.parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("'{p}' in '{s}' is not a port number (1-65535)"))
        };
        let (first, last) = match ports.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(ports)?, port(ports)?),
        };
        if first > last {
            return Err(format!("port range '{s}' is backwards"));
        }
        Ok(PortRange { proto, first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        if self.first == self.last {
            write!(f, "{proto}:{}", self.first)
        } else {
            write!(f, "{proto}:{}-{}", self.first, self.last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn families() {
        assert_eq!(Family::parse("AF_PACKET").unwrap(), Family("packet"));
        assert!(Family::parse("pakcet")
            .unwrap_err()
            .contains("did you mean 'packet'"));
    }
}
