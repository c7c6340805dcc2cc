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

    /// The instance (`b` of `a@b.service`); empty for a template or a plain unit.
    pub fn instance(&self) -> &str {
        self.stem().split_once('@').map_or("", |(_, i)| i)
    }

    /// True for a template (`foo@.service`) as opposed to an instance or a plain unit.
    pub fn is_template(&self) -> bool {
        self.stem().ends_with('@')
    }

    /// True for a name prefix (`run-.scope`, from a `run-.scope.d/` drop-in directory): it
    /// stands for every unit whose name begins `run-`.
    pub fn is_prefix(&self) -> bool {
        self.stem().ends_with('-') && !self.full.contains('@')
    }

    /// The specifiers whose value is not known before the unit is: in a template, the
    /// instance's ([`INSTANCE_SPECIFIERS`]); in a prefix, those that hold the name
    /// ([`NAME_SPECIFIERS`]: a prefix covers no instance, so `%i` and `%I` are empty, as
    /// for every unit it covers); none in a unit of its own.
    pub fn open_specifiers(&self) -> &'static [char] {
        if self.is_prefix() {
            &NAME_SPECIFIERS
        } else if self.is_template() {
            &INSTANCE_SPECIFIERS
        } else {
            &[]
        }
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

/// The specifiers whose value depends on the instance: in a bare template they widen.
pub const INSTANCE_SPECIFIERS: [char; 4] = ['i', 'I', 'n', 'N'];

/// The specifiers whose value depends on a unit's name, beyond its instance: in a name prefix
/// they widen.
pub const NAME_SPECIFIERS: [char; 4] = ['n', 'N', 'p', 'P'];

/// Expands specifiers in `s` for `unit`. An unknown specifier is an error, as in systemd.
///
/// A bare template (`foo@.service`) stands for every instance, so each instance-dependent
/// specifier ([`INSTANCE_SPECIFIERS`]) widens to what any instance could give: `%i` becomes
/// `*`, `%I` (which may hold `/`) becomes `**`, `%n` becomes `foo@*.service` and `%N`
/// `foo@*`. A name prefix (`run-.scope`) stands for every unit of that prefix, so every
/// specifier that holds the name widens: `%n` becomes `run-*.scope`, `%N` and `%p` `run-*`,
/// `%P` `run/**`; `%i` and `%I` are empty, as for every unit it covers (a prefix covers no
/// instance). See [`expand_path`] for `%I` (and a prefix's `%P`) inside a path component,
/// and [`widens`] for what allow rules do with all of this.
pub fn expand(s: &str, unit: &UnitName) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let template = unit.is_template();
    let prefix = unit.is_prefix();
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            // A name prefix stands for every unit of the prefix: any name in its place.
            Some('n') if prefix => {
                out.push_str(unit.stem());
                out.push('*');
                out.push_str(&unit.full[unit.stem().len()..]);
            }
            Some('N' | 'p') if prefix => {
                out.push_str(unit.stem());
                out.push('*');
            }
            Some('P') if prefix => {
                out.push_str(&unescape(unit.stem()));
                out.push_str("**");
            }
            // A bare template stands for all its instances: any instance in their place.
            Some('n') if template => out.push_str(&unit.full.replacen('@', "@*", 1)),
            Some('N') if template => out.push_str(&unit.stem().replacen('@', "@*", 1)),
            Some('i') if template => out.push('*'),
            Some('I') if template => out.push_str("**"),
            Some('n') => out.push_str(&unit.full),
            Some('N') => out.push_str(unit.stem()),
            Some('p') => out.push_str(unit.prefix()),
            Some('P') => out.push_str(&unescape(unit.prefix())),
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

/// Expands a path pattern (or a `unix:` socket argument) like [`expand`]. In a bare
/// template, a path component in which `%I` is not the whole component becomes `**` as a
/// whole: an instance's `%I` may hold `/`, and `**` must be a whole component, so
/// `/srv/x-%I/key` widens to `/srv/**/key`, which covers `/srv/x-a/b/key` too.
pub fn expand_path(s: &str, unit: &UnitName) -> Result<String, String> {
    // The specifiers that may widen to several components: `%I`, and a prefix's `%P`.
    let many = |c: char| (c == 'I' && unit.is_template()) || (c == 'P' && unit.is_prefix());
    if !used(s).any(many) {
        return expand(s, unit);
    }
    let mut comps = Vec::new();
    for (i, comp) in s.split('/').enumerate() {
        let e = expand(comp, unit)?;
        // The first component is empty in a path, and `unix:` (or an abstract socket name,
        // where `**` may stand anywhere) in a socket argument.
        if i > 0 && !matches!(comp, "%I" | "%P") && used(comp).any(&many) {
            comps.push("**".to_string());
        } else {
            comps.push(e);
        }
    }
    Ok(comps.join("/"))
}

/// The specifier letters `s` uses, in order (`%%` is no specifier).
fn used(s: &str) -> impl Iterator<Item = char> + '_ {
    let mut chars = s.chars();
    std::iter::from_fn(move || loop {
        match chars.next()? {
            '%' => match chars.next()? {
                '%' => continue,
                c => return Some(c),
            },
            _ => continue,
        }
    })
}

/// Whether `s` uses a specifier whose value depends on the instance ([`INSTANCE_SPECIFIERS`]:
/// `%i %I %n %N`).
pub fn has_instance(s: &str) -> bool {
    used(s).any(|c| INSTANCE_SPECIFIERS.contains(&c))
}

/// Whether `s` widens for `unit`: it uses a specifier whose value the unit does not know yet
/// ([`UnitName::open_specifiers`]). A bare template or a prefix drops such allow patterns:
/// the class stays an allow-list.
pub fn widens(s: &str, unit: &UnitName) -> bool {
    used(s).any(|c| unit.open_specifiers().contains(&c))
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

    /// Every instance-dependent specifier widens in a bare template, so that whatever an
    /// instance's pattern matches, the template's matches too.
    #[test]
    fn templates_widen_every_instance_specifier() {
        let t = UnitName::new("web@.service");
        assert_eq!(
            expand("/run/%n/%N/%i/%I", &t).unwrap(),
            "/run/web@*.service/web@*/*/**"
        );
        assert_eq!(expand("/srv/%p/%P", &t).unwrap(), "/srv/web/web");
        for s in ["/x/%n", "/x/%N", "/x/%i", "/x/%I", "%%%i"] {
            assert!(has_instance(s), "{s}");
        }
        for s in ["/x/%p", "/x/%P", "/x/%%n", "/x/%%N", "/x/%%%%i"] {
            assert!(!has_instance(s), "{s}");
        }
        // %I inside a component: the whole component widens (it may hold '/').
        assert_eq!(expand_path("/srv/x-%I/key", &t).unwrap(), "/srv/**/key");
        assert_eq!(expand_path("/srv/%I/key", &t).unwrap(), "/srv/**/key");
        assert_eq!(
            expand_path("unix:/run/%I.sock", &t).unwrap(),
            "unix:/run/**"
        );
        assert_eq!(expand_path("unix:@web-%I", &t).unwrap(), "unix:@web-**");
        // Instances and plain units expand exactly.
        let i = UnitName::new("web@a-b.service");
        assert_eq!(
            expand_path("/srv/x-%I/%n", &i).unwrap(),
            "/srv/x-a/b/web@a-b.service"
        );
        // Every instance's expansion is matched by the template's widened pattern.
        let pattern = "/srv/x-%I/%N.d/%n";
        let widened = crate::policy::PathPattern::parse(&expand_path(pattern, &t).unwrap())
            .unwrap()
            .to_regex();
        for inst in ["web@a.service", "web@a-b-c.service", "web@x.service"] {
            let path = expand_path(pattern, &UnitName::new(inst)).unwrap();
            assert!(
                crate::policy::lint::matches(&widened, &path),
                "{path} !~ {widened}"
            );
        }
    }

    /// A name prefix stands for every unit of the prefix: every specifier holding the name
    /// widens, and every such unit's expansion is matched by the prefix's.
    #[test]
    fn prefixes_widen_every_name_specifier() {
        let p = UnitName::new("run-.scope");
        assert!(p.is_prefix() && !p.is_template());
        assert!(!UnitName::new("run-a.scope").is_prefix());
        assert!(!UnitName::new("web@.service").is_prefix());
        assert_eq!(
            expand("/x/%n/%N/%p/", &p).unwrap(),
            "/x/run-*.scope/run-*/run-*/"
        );
        assert_eq!(expand_path("/srv/%P/key", &p).unwrap(), "/srv/run/**/key");
        assert_eq!(expand_path("/srv/a-%P/key", &p).unwrap(), "/srv/**/key");
        // No unit a prefix covers is an instance: %i and %I are empty for each, and for it.
        assert_eq!(expand_path("/srv/%i/x-%I/key", &p).unwrap(), "/srv//x-/key");
        for s in ["/x/%n", "/x/%N", "/x/%p", "/x/%P"] {
            assert!(widens(s, &p), "{s}");
            assert!(!widens(s, &UnitName::new("run-a.scope")), "{s}");
        }
        assert!(!widens("/x/%i/%I", &p));
        assert!(widens("/x/%i", &UnitName::new("web@.service")));
        assert!(!widens("/x/%p", &UnitName::new("web@.service")));
        assert!(!widens("/x/%%n", &p));
        let pattern = "/srv/%P/%N.d/%n/%p-%i/x-%I/%i";
        let widened = crate::policy::PathPattern::parse(&expand_path(pattern, &p).unwrap())
            .unwrap()
            .to_regex();
        for unit in ["run-r1.scope", "run-a-b-c.scope", "run-.scope"] {
            let path = expand_path(pattern, &UnitName::new(unit)).unwrap();
            assert!(
                crate::policy::lint::matches(&widened, &path),
                "{unit}: {path} !~ {widened}"
            );
        }
    }

    #[test]
    fn unescapes_hex() {
        assert_eq!(unescape("a\\x2db"), "a-b");
        assert_eq!(unescape("srv-www"), "srv/www");
    }
}
