//! What systemd already grants a service, as allow rules: `ArmorPolicy=@systemd`.
//!
//! A unit's own settings say much of what it may touch: the directories systemd makes for it
//! (`StateDirectory=`, `RuntimeDirectory=`, `CacheDirectory=`, `LogsDirectory=`,
//! `ConfigurationDirectory=`), the paths it opens up (`ReadWritePaths=`, `ReadOnlyPaths=`,
//! `BindPaths=`, `BindReadOnlyPaths=`), its credentials, its private `/tmp`, and the programs
//! its `Exec*=` lines run. `@systemd` turns them into allow rules, each with the file and line
//! of the setting it came from, so that a hand-written or suggested allow-list says only what
//! the unit file does not. Read from the unit's `[Service]` sections in systemd's order (an
//! empty assignment resets a list, as in systemd). Pure: files in, rules out.

use std::path::{Path, PathBuf};

use super::diag::Diagnostics;
use super::dropin;
use super::rule::Rule;
use super::specifiers::UnitName;
use super::Source;

/// The name `ArmorPolicy=@systemd` includes.
pub const NAME: &str = "systemd";

/// The list settings `@systemd` reads, in the order its rules come out.
const KEYS: [&str; 19] = [
    "StateDirectory",
    "RuntimeDirectory",
    "CacheDirectory",
    "LogsDirectory",
    "ConfigurationDirectory",
    "ReadWritePaths",
    "ReadOnlyPaths",
    "BindPaths",
    "BindReadOnlyPaths",
    "LoadCredential",
    "LoadCredentialEncrypted",
    "SetCredential",
    "SetCredentialEncrypted",
    "ImportCredential",
    "PrivateTmp",
    "DynamicUser",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
];

/// The other `Exec*=` settings, whose programs run in the unit's cgroup too.
const MORE_EXEC: [&str; 4] = ["ExecCondition", "ExecReload", "ExecStop", "ExecStopPost"];

/// Where systemd looks up a program named without a directory (systemd 239+).
const EXEC_SEARCH: [&str; 4] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"];

/// One assignment in a `[Service]` section.
struct Setting {
    key: String,
    value: String,
    source: Source,
}

/// The assignments of [`KEYS`] and [`MORE_EXEC`] in the `[Service]` sections of `files`, in
/// order, after systemd's list semantics (an empty value drops the key's earlier values).
fn settings(files: &[PathBuf]) -> Vec<Setting> {
    let mut out: Vec<Setting> = Vec::new();
    for file in files {
        let Ok(bytes) = dropin::read_limited(file) else {
            continue; // the [X-Armor] reader reports unreadable files
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut in_service = false;
        let mut lines = text.lines().enumerate();
        while let Some((i, raw)) = lines.next() {
            let mut line = raw.trim().to_string();
            while line.ends_with('\\') {
                line.pop();
                line.push(' ');
                match lines.next() {
                    Some((_, next)) => line.push_str(next.trim()),
                    None => break,
                }
            }
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_service = name == "Service";
                continue;
            }
            if !in_service {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if !KEYS.contains(&key) && !MORE_EXEC.contains(&key) {
                continue;
            }
            if value.is_empty() {
                out.retain(|s| s.key != key);
                continue;
            }
            out.push(Setting {
                key: key.to_string(),
                value: value.to_string(),
                source: Source::new(file, i + 1),
            });
        }
    }
    out
}

/// Whether a boolean setting's last value in `settings` is true.
fn enabled(settings: &[Setting], key: &str) -> bool {
    settings
        .iter()
        .rev()
        .find(|s| s.key == key)
        .is_some_and(|s| matches!(s.value.as_str(), "yes" | "true" | "on" | "1" | "y" | "t"))
}

/// A path as a rule argument: quoted where it has a space or a quote.
fn arg(path: &str) -> String {
    if path.contains([' ', '"', '\'', '\t']) {
        format!("\"{}\"", path.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        path.to_string()
    }
}

/// The rules `@systemd` stands for in the unit whose files are `files` (its fragment and
/// drop-ins, in systemd's order); `root` prefixes the programs' paths where their links are
/// followed (`/` normally). Rules that do not parse (a setting with a specifier this version
/// does not expand) are reported at the setting's line.
pub fn expand(
    files: &[PathBuf],
    unit: Option<&UnitName>,
    root: &Path,
    at: &Source,
    diags: &mut Diagnostics,
) -> Vec<Rule> {
    let all = settings(files);
    let dynamic = enabled(&all, "DynamicUser");
    // (action class, argument) texts with their source.
    let mut texts: Vec<(String, Source)> = Vec::new();
    let mut add = |classes: &[&str], paths: &[String], source: &Source| {
        if paths.is_empty() {
            return;
        }
        let args: Vec<String> = paths.iter().map(|p| arg(p)).collect();
        for class in classes {
            texts.push((format!("allow {class} {}", args.join(" ")), source.clone()));
        }
    };
    let rw = ["read", "write"];
    for s in &all {
        let words: Vec<&str> = s.value.split_whitespace().collect();
        match s.key.as_str() {
            key @ ("StateDirectory"
            | "RuntimeDirectory"
            | "CacheDirectory"
            | "LogsDirectory"
            | "ConfigurationDirectory") => {
                let (base, private) = match key {
                    "StateDirectory" => ("/var/lib", Some("/var/lib/private")),
                    "RuntimeDirectory" => ("/run", None),
                    "CacheDirectory" => ("/var/cache", Some("/var/cache/private")),
                    "LogsDirectory" => ("/var/log", Some("/var/log/private")),
                    _ => ("/etc", None),
                };
                let mut paths = Vec::new();
                for w in &words {
                    // NAME, or NAME:LINK (systemd 250+: LINK is made a symlink to NAME).
                    for name in w.split(':').filter(|n| !n.is_empty()) {
                        paths.push(format!("{base}/{}/", name.trim_matches('/')));
                        if let (true, Some(p)) = (dynamic, private) {
                            paths.push(format!("{p}/{}/", name.trim_matches('/')));
                        }
                    }
                }
                let classes: &[&str] = if key == "ConfigurationDirectory" {
                    &["read"]
                } else {
                    &rw
                };
                add(classes, &paths, &s.source);
            }
            key @ ("ReadWritePaths" | "ReadOnlyPaths" | "BindPaths" | "BindReadOnlyPaths") => {
                let bind = key.starts_with("Bind");
                let mut paths = Vec::new();
                for w in &words {
                    // A path, or for Bind*= [-]SRC[:DST[:OPTIONS]]: the service sees DST.
                    let w = w.trim_start_matches(['-', '+']);
                    let src = w.split(':').next().unwrap_or_default();
                    let seen = if bind {
                        w.split(':').nth(1).filter(|d| !d.is_empty()).unwrap_or(src)
                    } else {
                        w
                    };
                    if seen.starts_with('/') {
                        paths.push(seen.to_string());
                        paths.push(format!("{}/", seen.trim_end_matches('/')));
                    }
                }
                let classes: &[&str] = if key.contains("ReadOnly") {
                    &["read"]
                } else {
                    &rw
                };
                add(classes, &paths, &s.source);
            }
            "LoadCredential"
            | "LoadCredentialEncrypted"
            | "SetCredential"
            | "SetCredentialEncrypted"
            | "ImportCredential" => {
                if let Some(u) = unit {
                    add(
                        &["read"],
                        &[format!("/run/credentials/{}/", u.full)],
                        &s.source,
                    );
                }
            }
            // The last assignment decides (below).
            "PrivateTmp" | "DynamicUser" => {}
            _ => {
                // Exec*=: the program is the first word after the prefixes (@-:+!|).
                let Some(first) = words.first() else {
                    continue;
                };
                let program = first.trim_start_matches(['@', '-', ':', '+', '!', '|']);
                let mut paths = Vec::new();
                let candidates: Vec<String> = if program.starts_with('/') {
                    vec![program.to_string()]
                } else if !program.is_empty() && !program.contains('/') {
                    EXEC_SEARCH
                        .iter()
                        .map(|d| format!("{d}/{program}"))
                        .collect()
                } else {
                    Vec::new()
                };
                for c in candidates {
                    // The kernel names the file a link leads to (/bin/sh is /usr/bin/dash).
                    let real = std::fs::canonicalize(root.join(c.trim_start_matches('/')))
                        .ok()
                        .and_then(|p| {
                            p.strip_prefix(root)
                                .ok()
                                .map(|r| format!("/{}", r.display()))
                        });
                    if let Some(real) = real.filter(|r| *r != c) {
                        paths.push(real);
                    }
                    paths.push(c);
                }
                add(&["exec"], &paths, &s.source);
            }
        }
    }
    if let Some(s) = all.iter().rev().find(|s| s.key == "PrivateTmp") {
        if enabled(&all, "PrivateTmp") {
            add(&rw, &["/tmp/".into(), "/var/tmp/".into()], &s.source);
        }
    }
    let mut rules = Vec::new();
    for (text, source) in texts {
        match Rule::parse(&text, unit, source.clone()) {
            Ok(r) => rules.push(r),
            Err(e) => diags.error(&source, format!("@{NAME}: \"{text}\": {e}")),
        }
    }
    if all.is_empty() {
        diags.warning(
            at,
            format!(
                "@{NAME}: the unit's files set none of the settings it reads ({}, Exec*=...)",
                KEYS[..9].join("=, ")
            ),
        );
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.service");
        std::fs::write(&f, text).unwrap();
        (dir, f)
    }

    fn texts(rules: &[Rule]) -> Vec<String> {
        rules.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn directories_paths_and_programs_become_allow_rules_with_their_lines() {
        let (_d, f) = unit_file(
            "[Unit]\nDescription=x\n[Service]\nExecStart=/usr/bin/app --serve\nStateDirectory=app app/cache\nRuntimeDirectory=app\nConfigurationDirectory=app\nReadWritePaths=-/srv/data\nBindReadOnlyPaths=/opt/src:/srv/ro:rbind\nPrivateTmp=yes\n",
        );
        let mut diags = Diagnostics::default();
        let at = Source::new(&f, 1);
        let unit = UnitName::new("app.service");
        let rules = expand(
            std::slice::from_ref(&f),
            Some(&unit),
            Path::new("/"),
            &at,
            &mut diags,
        );
        let t = texts(&rules);
        assert!(t.contains(&"allow exec /usr/bin/app".to_string()), "{t:?}");
        assert!(
            t.contains(&"allow write /var/lib/app/ /var/lib/app/cache/".to_string()),
            "{t:?}"
        );
        assert!(t.contains(&"allow read /run/app/".to_string()), "{t:?}");
        assert!(t.contains(&"allow read /etc/app/".to_string()), "{t:?}");
        assert!(!t.contains(&"allow write /etc/app/".to_string()), "{t:?}");
        assert!(
            t.contains(&"allow write /srv/data /srv/data/".to_string()),
            "{t:?}"
        );
        assert!(
            t.contains(&"allow read /srv/ro /srv/ro/".to_string()),
            "{t:?}"
        );
        assert!(
            t.contains(&"allow write /tmp/ /var/tmp/".to_string()),
            "{t:?}"
        );
        let state = rules
            .iter()
            .find(|r| r.to_string().starts_with("allow write /var/lib/app/"))
            .unwrap();
        assert_eq!(state.source.line, 5);
        assert!(!diags.has_errors(), "{diags:?}");
    }

    #[test]
    fn drop_ins_extend_and_an_empty_assignment_resets() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("app.service");
        let b = dir.path().join("override.conf");
        std::fs::write(
            &a,
            "[Service]\nStateDirectory=old\nExecStart=/usr/bin/app\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            "[Service]\nStateDirectory=\nStateDirectory=new\nDynamicUser=yes\n",
        )
        .unwrap();
        let mut diags = Diagnostics::default();
        let rules = expand(
            &[a.clone(), b],
            None,
            Path::new("/"),
            &Source::new(&a, 1),
            &mut diags,
        );
        let t = texts(&rules);
        assert!(t.iter().all(|r| !r.contains("/var/lib/old/")), "{t:?}");
        assert!(
            t.contains(&"allow write /var/lib/new/ /var/lib/private/new/".to_string()),
            "{t:?}"
        );
    }

    #[test]
    fn programs_without_a_directory_are_looked_up_as_systemd_does() {
        let (_d, f) = unit_file("[Service]\nExecStart=-app\nExecStop=@/usr/bin/stop stop-name\n");
        let mut diags = Diagnostics::default();
        let rules = expand(
            std::slice::from_ref(&f),
            None,
            Path::new("/"),
            &Source::new(&f, 1),
            &mut diags,
        );
        let t = texts(&rules);
        assert!(
            t.contains(
                &"allow exec /usr/local/sbin/app /usr/local/bin/app /usr/sbin/app /usr/bin/app"
                    .to_string()
            ),
            "{t:?}"
        );
        assert!(t.contains(&"allow exec /usr/bin/stop".to_string()), "{t:?}");
    }

    #[test]
    fn a_unit_that_sets_nothing_gets_a_warning() {
        let (_d, f) = unit_file("[Service]\nType=oneshot\n[Install]\nWantedBy=x\n");
        let mut diags = Diagnostics::default();
        assert!(expand(
            std::slice::from_ref(&f),
            None,
            Path::new("/"),
            &Source::new(&f, 1),
            &mut diags
        )
        .is_empty());
        assert_eq!(diags.0.len(), 1);
        assert!(!diags.has_errors());
    }
}
