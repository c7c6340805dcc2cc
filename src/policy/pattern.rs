//! Path patterns: absolute paths with `*` and `?` inside one component, `**` across components,
//! and a trailing `/` for "this directory and everything below it".

use std::fmt;

use serde::Serialize;

/// The pattern of every memfd (`memfd_create()`): exec rules may name code that is no file on
/// disk, which the kernel names by the memfd's dentry.
pub const MEMFD: &str = "memfd:";

/// Longest pattern accepted, in bytes: the kernel matches paths of at most 4095 bytes.
pub const MAX_LEN: usize = 4095;

/// A validated, normalized path pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PathPattern {
    text: String,
}

impl PathPattern {
    /// Parses and normalizes (`//` folds to `/`). Relative paths, `.` and `..` components, NUL
    /// bytes and over-long patterns are errors.
    pub fn parse(s: &str) -> Result<PathPattern, String> {
        if let Some(name) = s.strip_prefix(MEMFD) {
            if !name.is_empty() {
                return Err(format!(
                    "'{s}': write '{MEMFD}' alone (a memfd's name is whatever its creator chose)"
                ));
            }
            return Ok(PathPattern { text: s.into() });
        }
        if !s.starts_with('/') {
            return Err(format!("'{s}' is not an absolute path"));
        }
        if s.len() > MAX_LEN {
            return Err(format!(
                "path pattern is {} bytes long; the limit is {MAX_LEN}",
                s.len()
            ));
        }
        if s.contains('\0') {
            return Err("path pattern contains a NUL byte".into());
        }
        let dir = s.ends_with('/');
        let mut text = String::with_capacity(s.len());
        for comp in s.split('/').filter(|c| !c.is_empty()) {
            if comp == "." || comp == ".." {
                return Err(format!(
                    "'{s}' has a '{comp}' component; write the path it means"
                ));
            }
            if comp.contains("**") && comp != "**" {
                return Err(format!("'{s}': '**' must be a whole path component"));
            }
            text.push('/');
            text.push_str(comp);
        }
        if dir || text.is_empty() {
            text.push('/');
        }
        Ok(PathPattern { text })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is `memfd:`, code in memory (exec rules only).
    pub fn is_memfd(&self) -> bool {
        self.text == MEMFD
    }

    /// The pattern as an anchored regular expression over bytes (for regex-automata):
    /// `**` is any string, `*` any string without `/`, `?` one byte other than `/`; a trailing
    /// `/` matches the directory itself and everything below it.
    pub fn to_regex(&self) -> String {
        if self.is_memfd() {
            // The kernel names a memfd by its dentry, `memfd:NAME` (bpf/path.h).
            return "^memfd:.*$".into();
        }
        let (body, subtree) = match self.text.strip_suffix('/') {
            Some(b) => (b, true),
            None => (self.text.as_str(), false),
        };
        let mut re = String::from("^");
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'*' if bytes.get(i + 1) == Some(&b'*') => {
                    re.push_str(".*");
                    i += 1;
                }
                b'*' => re.push_str("[^/]*"),
                b'?' => re.push_str("[^/]"),
                _ => {
                    // Copy the whole UTF-8 character, escaped.
                    let ch = body[i..].chars().next().expect("in bounds");
                    let mut buf = [0; 4];
                    re.push_str(&regex_escape(ch.encode_utf8(&mut buf)));
                    i += ch.len_utf8() - 1;
                }
            }
            i += 1;
        }
        if subtree {
            re.push_str("(?:/.*)?");
        }
        re.push('$');
        re
    }
}

/// `s` with the regex metacharacters of [`PathPattern::to_regex`]'s dialect escaped.
pub(super) fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~ ".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use regex_automata::dfa::{dense, Automaton};
    use regex_automata::Input;

    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        let re = PathPattern::parse(pattern).unwrap().to_regex();
        let dfa = dense::Builder::new()
            .syntax(
                regex_automata::util::syntax::Config::new()
                    .unicode(false)
                    .utf8(false),
            )
            .build(&re)
            .unwrap();
        dfa.try_search_fwd(&Input::new(path)).unwrap().is_some()
    }

    #[test]
    fn memfd_names_every_memfd() {
        let p = PathPattern::parse("memfd:").unwrap();
        assert!(p.is_memfd());
        assert!(matches("memfd:", "memfd:x"));
        assert!(matches("memfd:", "memfd:"));
        assert!(!matches("memfd:", "/memfd:x"));
        assert!(!matches("/**", "memfd:x"), "no absolute pattern names one");
        assert!(PathPattern::parse("memfd:loader")
            .unwrap_err()
            .contains("alone"));
    }

    #[test]
    fn normalizes() {
        assert_eq!(
            PathPattern::parse("//etc//ssl/").unwrap().as_str(),
            "/etc/ssl/"
        );
        assert_eq!(PathPattern::parse("/").unwrap().as_str(), "/");
        assert!(PathPattern::parse("etc/passwd").is_err());
        assert!(PathPattern::parse("/etc/../root").is_err());
        assert!(PathPattern::parse("/a/b**").is_err());
        assert!(PathPattern::parse("/a\0").is_err());
        assert!(PathPattern::parse(&format!("/{}", "a".repeat(5000))).is_err());
    }

    #[test]
    fn literal_matches_only_itself() {
        assert!(matches("/etc/shadow", "/etc/shadow"));
        assert!(!matches("/etc/shadow", "/etc/shadow-"));
        assert!(!matches("/etc/shadow", "/etc/shadow/x"));
        assert!(!matches("/etc/shadow", "/etc"));
    }

    #[test]
    fn trailing_slash_is_the_directory_and_below() {
        assert!(matches("/etc/", "/etc"));
        assert!(matches("/etc/", "/etc/passwd"));
        assert!(matches("/etc/", "/etc/ssl/certs/x.pem"));
        assert!(!matches("/etc/", "/etcetera"));
        assert!(matches("/", "/anything/at/all"));
    }

    #[test]
    fn stars() {
        assert!(matches("/srv/*/uploads/", "/srv/a/uploads/f"));
        assert!(!matches("/srv/*/uploads/", "/srv/a/b/uploads/f"));
        assert!(matches("/root/**", "/root/a/b/c"));
        assert!(!matches("/root/**", "/rootx/a"));
        assert!(matches("/usr/lib/app/**", "/usr/lib/app/x.so"));
        assert!(matches("/tmp/?.txt", "/tmp/a.txt"));
        assert!(!matches("/tmp/?.txt", "/tmp/ab.txt"));
        assert!(!matches("/tmp/*.txt", "/tmp/a/b.txt"));
    }

    #[test]
    fn metacharacters_are_literal() {
        assert!(matches("/opt/a+b (1)/[x]", "/opt/a+b (1)/[x]"));
        assert!(!matches("/opt/a.b", "/opt/aXb"));
        assert!(matches("/srv/ünï", "/srv/ünï"));
    }
}
