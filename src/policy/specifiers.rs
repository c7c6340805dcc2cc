//! systemd's unit name specifiers in rule arguments: `%n %N %p %i %I %%`, expanded as systemd
//! expands them (`%I` and `%P`-style unescaping included), so a template can say
//! `allow write /srv/%i/`.

/// The parts of a unit name that specifiers refer to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitName {
    /// Full name, `foo@bar.service`.
    pub full: String,
}

impl UnitName {
    pub fn new(full: impl Into<String>) -> Self {
        UnitName { full: full.into() }
    }

    /// `foo@bar` without the type suffix.
    fn stem(&self) -> &str {
        self.full
            .rsplit_once('.')
            .map_or(self.full.as_str(), |(s, _)| s)
    }

    fn prefix(&self) -> &str {
        let stem = self.stem();
        stem.split_once('@').map_or(stem, |(p, _)| p)
    }

    fn instance(&self) -> &str {
        self.stem().split_once('@').map_or("", |(_, i)| i)
    }

    /// True for a template (`foo@.service`) as opposed to an instance or a plain unit.
    pub fn is_template(&self) -> bool {
        self.stem().ends_with('@')
    }
}

/// systemd's unit name unescaping: `-` is `/`, `\xNN` is byte NN.
pub fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'-' {
            out.push(b'/');
        } else if let (b'\\', Some(b'x'), Some(hi), Some(lo)) =
            (b[i], b.get(i + 1), hex(b.get(i + 2)), hex(b.get(i + 3)))
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    (*b? as char).to_digit(16).map(|d| d as u8)
}

/// Expands specifiers in `s` for `unit`. An unknown specifier is an error, as in systemd. In a
/// bare template (`foo@.service`), which stands for every instance, `%i` becomes `*` and `%I`
/// becomes `**`; see [`has_instance`] for what allow rules do with that.
pub fn expand(s: &str, unit: &UnitName) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('n') => out.push_str(&unit.full),
            Some('N') => out.push_str(unit.stem()),
            Some('p') => out.push_str(unit.prefix()),
            Some('P') => out.push_str(&unescape(unit.prefix())),
            // A bare template stands for all its instances: any one component.
            Some('i') if unit.is_template() => out.push('*'),
            Some('I') if unit.is_template() => out.push_str("**"),
            Some('i') => out.push_str(unit.instance()),
            Some('I') => out.push_str(&unescape(unit.instance())),
            Some(other) => {
                return Err(format!(
                    "unknown specifier '%{other}' in '{s}' (known: %n %N %p %P %i %I %%)"
                ))
            }
            None => {
                return Err(format!(
                    "'{s}' ends with a lone '%' (write %% for a percent sign)"
                ))
            }
        }
    }
    Ok(out)
}

/// Whether `s` uses an instance specifier.
pub fn has_instance(s: &str) -> bool {
    s.replace("%%", "").contains("%i") || s.replace("%%", "").contains("%I")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_systemd() {
        let u = UnitName::new("web@site-a.service");
        assert_eq!(expand("/srv/%i/", &u).unwrap(), "/srv/site-a/");
        assert_eq!(expand("/srv/%I/", &u).unwrap(), "/srv/site/a/");
        assert_eq!(
            expand("%n %N %p 100%%", &u).unwrap(),
            "web@site-a.service web@site-a web 100%"
        );
        let plain = UnitName::new("nginx.service");
        assert_eq!(expand("/var/log/%p/", &plain).unwrap(), "/var/log/nginx/");
        assert_eq!(expand("/x/%i", &plain).unwrap(), "/x/");
    }

    #[test]
    fn unknown_and_dangling_are_errors() {
        let u = UnitName::new("a.service");
        assert!(expand("/x/%q", &u)
            .unwrap_err()
            .contains("unknown specifier"));
        assert!(expand("/x/%", &u).is_err());
        assert_eq!(
            expand("/x/%i/%I", &UnitName::new("t@.service")).unwrap(),
            "/x/*/**"
        );
        assert!(has_instance("/srv/%i/") && !has_instance("/srv/%%i/"));
    }

    #[test]
    fn unescapes_hex() {
        assert_eq!(unescape("a\\x2db"), "a-b");
        assert_eq!(unescape("srv-www"), "srv/www");
    }
}
