//! Named policies: `/etc/unitarmor/policies/NAME.toml` (then `/run/...`, `/usr/lib/...`),
//! included from a drop-in with `ArmorPolicy=@NAME`. The TOML says what rule lines say, in
//! structured form:
//!
//! ```toml
//! description = "What a static web server needs"
//! include = ["base"]            # other named policies, expanded first
//!
//! [[rule]]
//! action = "deny"               # allow | deny | audit
//! class = "write"               # read | write | exec | net | connect | bind | cap
//! args = ["/etc/", "/usr/"]     # paths, families, PROTO:PORT ranges or capabilities
//! from = "/usr/sbin/nginx"      # optional
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diag::Diagnostics;
use super::rule::{split_words, Class, Rule};
use super::specifiers::UnitName;
use super::Source;

/// Where named policies are looked up, first match wins.
pub const DIRS: [&str; 3] = [
    "/etc/unitarmor/policies",
    "/run/unitarmor/policies",
    "/usr/lib/unitarmor/policies",
];

/// How deep `@NAME` includes may nest.
pub const MAX_DEPTH: usize = 8;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    rule: Vec<toml::Spanned<RuleTable>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleTable {
    action: String,
    class: String,
    args: Vec<String>,
    from: Option<String>,
}

/// A named policy name is a plain file stem: letters, digits, `-`, `_`, `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Where named policies are looked up.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// Prefix of [`DIRS`] (`/` normally; another directory for tests and `--root`).
    pub root: PathBuf,
    /// Searched before [`DIRS`] (`--policy-dir`).
    pub extra: Vec<PathBuf>,
}

impl Lookup {
    /// The system's directories.
    pub fn system() -> Lookup {
        Lookup {
            root: PathBuf::from("/"),
            extra: Vec::new(),
        }
    }

    pub fn under(root: &Path) -> Lookup {
        Lookup {
            root: root.to_path_buf(),
            extra: Vec::new(),
        }
    }

    /// Finds `name`.toml, first match wins.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        let file = format!("{name}.toml");
        self.extra
            .iter()
            .map(|d| d.join(&file))
            .chain(
                DIRS.iter()
                    .map(|d| self.root.join(d.trim_start_matches('/')).join(&file)),
            )
            .find(|p| p.exists())
    }
}

/// Expands `@name` into rules, following its includes. `stack` holds the names being expanded
/// (for cycle errors); `at` is where the include was written. The classes of allow rules that
/// do not parse go to `broken_allow` (see [`Rule::broken_allow_class`]).
pub fn expand(
    lookup: &Lookup,
    name: &str,
    unit: Option<&UnitName>,
    at: &Source,
    stack: &mut Vec<String>,
    broken_allow: &mut BTreeSet<Class>,
    diags: &mut Diagnostics,
) -> Vec<Rule> {
    if !valid_name(name) {
        diags.error(
            at,
            format!("'@{name}' is not a valid policy name (letters, digits, '-', '_', '.')"),
        );
        return Vec::new();
    }
    if stack.iter().any(|n| n == name) {
        diags.error(
            at,
            format!("include cycle: @{} -> @{name}", stack.join(" -> @")),
        );
        return Vec::new();
    }
    if stack.len() >= MAX_DEPTH {
        diags.error(
            at,
            format!(
                "includes nest deeper than {MAX_DEPTH} (@{} -> @{name})",
                stack.join(" -> @")
            ),
        );
        return Vec::new();
    }
    // A policy that is missing or cannot be read may have allowed anything or nothing: every
    // class it could have had allow rules in stays an allow-list (deny rather than allow).
    let Some(path) = lookup.find(name) else {
        let dirs = DIRS.map(|d| format!("{d}/{name}.toml")).join(", ");
        diags.error(at, format!("no named policy '@{name}' (looked for {dirs})"));
        broken_allow.extend(Class::ALL);
        return Vec::new();
    };
    let text = match read_limited(&path) {
        Ok(t) => t,
        Err(e) => {
            diags.error(&Source::new(&path, 1), e);
            broken_allow.extend(Class::ALL);
            return Vec::new();
        }
    };
    let file: File = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.span().map_or(1, |s| line_of(&text, s.start));
            diags.error(
                &Source::new(&path, line),
                format!("invalid policy file: {}", e.message()),
            );
            broken_allow.extend(Class::ALL);
            return Vec::new();
        }
    };
    stack.push(name.to_string());
    let mut rules = Vec::new();
    for inc in &file.include {
        let line = text
            .lines()
            .position(|l| l.contains(inc.as_str()))
            .map_or(1, |i| i + 1);
        rules.extend(expand(
            lookup,
            inc,
            unit,
            &Source::new(&path, line),
            stack,
            broken_allow,
            diags,
        ));
    }
    for spanned in &file.rule {
        let src = Source::new(&path, line_of(&text, spanned.span().start));
        let r = spanned.get_ref();
        // Build the same text a drop-in line would hold, so both forms share one parser.
        let mut words = vec![r.action.clone(), r.class.clone()];
        words.extend(r.args.iter().map(|a| quote(a)));
        if let Some(f) = &r.from {
            words.push(format!("from={}", quote(f)));
        }
        let text = words.join(" ");
        match Rule::parse(&text, unit, src.clone()) {
            Ok(rule) => rules.push(rule),
            Err(e) => {
                broken_allow.extend(Rule::broken_allow_class(&text));
                diags.error(&src, e);
            }
        }
    }
    stack.pop();
    rules
}

fn quote(s: &str) -> String {
    match split_words(s) {
        Ok(w) if w.len() == 1 && w[0] == s => s.to_string(),
        _ => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn read_limited(path: &Path) -> Result<String, String> {
    let bytes = super::dropin::read_limited(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "file is not valid UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir
                .path()
                .join("etc/unitarmor/policies")
                .join(format!("{name}.toml"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn run(root: &Path, name: &str) -> (Vec<Rule>, Diagnostics) {
        let mut d = Diagnostics::default();
        let rules = expand(
            &Lookup::under(root),
            name,
            None,
            &Source::new("/u.conf", 3),
            &mut Vec::new(),
            &mut BTreeSet::new(),
            &mut d,
        );
        (rules, d)
    }

    #[test]
    fn structured_rules_and_includes() {
        let t = tree(&[
            ("base", "[[rule]]\naction = \"deny\"\nclass = \"read\"\nargs = [\"/etc/shadow\"]\n"),
            (
                "web",
                "description = \"w\"\ninclude = [\"base\"]\n\n[[rule]]\naction = \"deny\"\nclass = \"write\"\n\
                 args = [\"/etc/\", \"/my dir/\"]\nfrom = \"/usr/sbin/nginx\"\n",
            ),
        ]);
        let (rules, d) = run(t.path(), "web");
        assert!(d.0.is_empty(), "{d:?}");
        let text: Vec<String> = rules
            .iter()
            .map(|r| format!("{} @{}", r, r.source.line))
            .collect();
        assert_eq!(
            text,
            [
                "deny read /etc/shadow @1",
                "deny write /etc/ \"/my dir/\" from=/usr/sbin/nginx @4"
            ]
        );
        assert!(rules[0].source.file.ends_with("base.toml"));
    }

    #[test]
    fn cycles_depth_and_missing() {
        let t = tree(&[("a", "include = [\"b\"]\n"), ("b", "include = [\"a\"]\n")]);
        let (_, d) = run(t.path(), "a");
        assert!(
            d.0[0].message.contains("include cycle: @a -> @b -> @a"),
            "{d:?}"
        );
        let chain: Vec<(String, String)> = (0..12)
            .map(|i| (format!("n{i}"), format!("include = [\"n{}\"]\n", i + 1)))
            .collect();
        let refs: Vec<(&str, &str)> = chain
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let t = tree(&refs);
        let (_, d) = run(t.path(), "n0");
        assert!(d.0[0].message.contains("nest deeper"), "{d:?}");
        let (_, d) = run(t.path(), "nothere");
        assert!(d.0[0].message.contains("no named policy '@nothere'"));
        assert_eq!(d.0[0].source.line, 3);
        let (_, d) = run(t.path(), "../etc/passwd");
        assert!(d.0[0].message.contains("not a valid policy name"));
    }

    #[test]
    fn bad_toml_points_at_the_line() {
        let t = tree(&[
            (
                "bad",
                "[[rule]]\naction = \"deny\"\nclass = \"read\"\nargs = [\"/x\"]\nextra = 1\n",
            ),
            (
                "badcap",
                "[[rule]]\naction = \"deny\"\nclass = \"cap\"\nargs = [\"sys_admn\"]\n",
            ),
        ]);
        let (_, d) = run(t.path(), "bad");
        assert!(d.0[0].message.contains("unknown field"), "{d:?}");
        let (_, d) = run(t.path(), "badcap");
        assert!(
            d.0[0]
                .to_string()
                .contains("badcap.toml:1: error: unknown capability 'sys_admn'"),
            "{d:?}"
        );
    }
}
