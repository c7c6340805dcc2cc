//! Host tests of rule parsing (src/policy/rule.rs).

use super::*;

fn parse(s: &str) -> Result<Rule, String> {
    Rule::parse(
        s,
        Some(&UnitName::new("web@a.service")),
        Source::new("/t.conf", 1),
    )
}

#[test]
fn path_rules() {
    let r = parse("deny write /etc/ /usr/").unwrap();
    assert_eq!((r.action, r.class), (Action::Deny, Class::Write));
    assert_eq!(r.paths().len(), 2);
    assert_eq!(r.to_string(), "deny write /etc/ /usr/");
    let r = parse("allow write /srv/%i/ from=/usr/bin/app").unwrap();
    assert_eq!(r.to_string(), "allow write /srv/a/ from=/usr/bin/app");
}

#[test]
fn other_classes() {
    assert_eq!(
        parse("deny net raw packet").unwrap().to_string(),
        "deny net raw packet"
    );
    assert_eq!(
        parse("deny connect tcp:25").unwrap().to_string(),
        "deny connect tcp:25"
    );
    assert_eq!(
        parse("deny cap SYS_ADMIN cap_sys_module")
            .unwrap()
            .to_string(),
        "deny cap sys_admin sys_module"
    );
}

#[test]
fn templates_are_stricter_than_any_instance() {
    let t = UnitName::new("web@.service");
    let src = || Source::new("/t.conf", 1);
    let r = Rule::parse("allow write /srv/%i/ /tmp/", Some(&t), src()).unwrap();
    assert_eq!(r.to_string(), "allow write /tmp/");
    let r = Rule::parse("allow write /srv/%i/", Some(&t), src()).unwrap();
    assert!(r.paths().is_empty());
    let r = Rule::parse("deny read /srv/%i/secret", Some(&t), src()).unwrap();
    assert_eq!(r.to_string(), "deny read /srv/*/secret");
}

#[test]
fn templates_widen_names_and_from() {
    let t = UnitName::new("web@.service");
    let src = || Source::new("/t.conf", 1);
    let r = Rule::parse("deny read /run/%n /run/%N/ /srv/a-%I/k", Some(&t), src()).unwrap();
    assert_eq!(
        r.to_string(),
        "deny read /run/web@*.service /run/web@*/ /srv/**/k"
    );
    let r = Rule::parse("allow write /run/%n /run/%N/ /tmp/", Some(&t), src()).unwrap();
    assert_eq!(r.to_string(), "allow write /tmp/");
    let r = Rule::parse("allow read /etc/ from=/opt/%i/bin", Some(&t), src()).unwrap();
    assert!(r.paths().is_empty(), "{r}");
    let r = Rule::parse("deny read /etc/ from=/opt/%i/bin", Some(&t), src()).unwrap();
    assert_eq!(r.to_string(), "deny read /etc/ from=/opt/*/bin");
    // An instance gets exactly its own names.
    let i = UnitName::new("web@a.service");
    let r = Rule::parse("allow read /run/%n from=/opt/%i/bin", Some(&i), src()).unwrap();
    assert_eq!(
        r.to_string(),
        "allow read /run/web@a.service from=/opt/a/bin"
    );
}

/// A name prefix stands for every unit of the prefix: names widen in deny rules, allow
/// patterns and allow rules whose from= widens name nothing (never looser than a member's).
#[test]
fn prefixes_widen_names_and_from_never_loosening() {
    let p = UnitName::new("run-.scope");
    let src = || Source::new("/p.conf", 1);
    let r = Rule::parse("deny read /run/%N/ /srv/%i/secret", Some(&p), src()).unwrap();
    assert_eq!(r.to_string(), "deny read /run/run-*/ /srv/secret");
    let r = Rule::parse("allow write /run/%N/ /tmp/", Some(&p), src()).unwrap();
    assert_eq!(r.to_string(), "allow write /tmp/");
    for text in [
        "allow bind tcp:8080 from=/opt/%N/srv",
        "allow connect tcp:5432 from=/opt/%N/srv",
        "allow cap net_admin from=/opt/%N/srv",
        "allow net inet from=/opt/%N/srv",
        "allow read /etc/ from=/opt/%N/srv",
    ] {
        let r = Rule::parse(text, Some(&p), src()).unwrap();
        assert!(
            r.to_string().starts_with("allow ") && !r.to_string().contains("8080"),
            "{text}: {r}"
        );
        match &r.target {
            crate::policy::Target::Ports(v) => assert!(v.is_empty(), "{text}"),
            crate::policy::Target::Caps(v) => assert!(v.is_empty(), "{text}"),
            crate::policy::Target::Families(v) => assert!(v.is_empty(), "{text}"),
            crate::policy::Target::Paths(v) => assert!(v.is_empty(), "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    // A deny keeps what it names, for the widened programs.
    let r = Rule::parse("deny bind tcp:8080 from=/opt/%N/srv", Some(&p), src()).unwrap();
    assert_eq!(r.to_string(), "deny bind tcp:8080 from=/opt/run-*/srv");
}

#[test]
fn peer_rules() {
    let src = || Source::new("/p.conf", 1);
    let r = Rule::parse("allow signal nginx.service web@a.service", None, src()).unwrap();
    assert_eq!(
        r.target,
        Target::Units(vec!["nginx.service".into(), "web@a.service".into()])
    );
    assert_eq!(r.to_string(), "allow signal nginx.service web@a.service");
    assert!(Rule::parse("deny ptrace", None, src()).is_ok());
    let err = |t: &str| Rule::parse(t, None, src()).unwrap_err();
    assert!(err("deny signal nginx.service").contains("takes no units"));
    assert!(err("allow signal").contains("names no unit"));
    assert!(err("audit ptrace x.service").contains("not supported"));
    assert!(err("allow signal unitarmor.service").contains("may never be named"));
    assert!(err("allow ptrace init.scope").contains("may never be named"));
    assert!(err("allow signal nginx").contains("not a service or scope"));
    assert!(err("allow signal *.service").contains("not a service or scope"));
    assert!(err("allow signal web@.service").contains("template"));
    assert!(err("deny signal from=/usr/bin/kill").contains("no from="));
    assert!(err("deny ptrace from=/usr/bin/gdb").contains("no from="));
}

#[test]
fn broken_allow_rules_name_their_class() {
    assert_eq!(
        Rule::broken_allow_class("allow read relative/path"),
        Some(Class::Read)
    );
    assert_eq!(
        Rule::broken_allow_class("allow exec \"/unterminated"),
        Some(Class::Exec)
    );
    assert_eq!(
        Rule::broken_allow_class("allow connect unix:relative"),
        Some(Class::Connect)
    );
    assert_eq!(
        Rule::broken_allow_class("allow connect tcp:99999"),
        Some(Class::Connect)
    );
    assert_eq!(Rule::broken_allow_class("allow raed /x"), None);
    assert_eq!(Rule::broken_allow_class("deny read relative"), None);
    assert_eq!(Rule::broken_allow_class("allow"), None);
}

#[test]
fn unix_connect_rules() {
    let r = parse("allow connect unix:/run/app/%i.sock UNIX:@app-%p-*").unwrap();
    assert!(r.is_unix());
    assert_eq!(
        r.to_string(),
        "allow connect unix:/run/app/a.sock unix:@app-web-*"
    );
    assert_eq!(
        r.unix_regexes(),
        [
            PathPattern::parse("/run/app/a.sock").unwrap().to_regex(),
            "^@app\\-web\\-.*$".to_string()
        ]
    );
    let again = parse(&r.to_string()).unwrap();
    assert_eq!(again.target, r.target);
    let r = parse(r#"deny connect "unix:/run/my sock""#).unwrap();
    assert_eq!(r.to_string(), r#"deny connect "unix:/run/my sock""#);
    assert_eq!(parse(&r.to_string()).unwrap().target, r.target);
    let ports = parse("deny connect tcp:25").unwrap();
    assert!(!ports.is_unix() && ports.unix_regexes().is_empty());
}

#[test]
fn unix_connect_errors() {
    assert!(parse("deny connect tcp:25 unix:/run/x")
        .unwrap_err()
        .contains("either ports or unix: sockets, not both"));
    assert!(parse("deny connect unix:/run/x udp:53")
        .unwrap_err()
        .contains("not both"));
    assert!(parse("deny bind unix:/run/x")
        .unwrap_err()
        .contains("only connect"));
    assert!(parse("deny connect unix:relative")
        .unwrap_err()
        .contains("neither"));
    assert!(parse("deny connect unix:/x/%z")
        .unwrap_err()
        .contains("specifier"));
}

#[test]
fn unix_sockets_in_templates() {
    let t = UnitName::new("web@.service");
    let src = || Source::new("/t.conf", 1);
    let r = Rule::parse(
        "allow connect unix:/run/web/%i.sock unix:/run/db.sock",
        Some(&t),
        src(),
    )
    .unwrap();
    assert_eq!(r.to_string(), "allow connect unix:/run/db.sock");
    let r = Rule::parse("allow connect unix:@web-%i", Some(&t), src()).unwrap();
    assert!(r.is_unix() && r.sockets().is_empty());
    let r = Rule::parse("deny connect unix:@web-%i unix:/run/%I/s", Some(&t), src()).unwrap();
    assert_eq!(r.to_string(), "deny connect unix:@web-* unix:/run/**/s");
}

#[test]
fn quoting() {
    let r = parse(r#"deny read "/srv/my dir/" /x"#).unwrap();
    assert_eq!(r.paths()[0].as_str(), "/srv/my dir/");
    assert_eq!(r.to_string(), r#"deny read "/srv/my dir/" /x"#);
    assert!(parse(r#"deny read "/srv"#).is_err());
}

#[test]
fn errors_say_what_is_wrong() {
    assert!(parse("").unwrap_err().contains("empty"));
    assert!(parse("dney read /x")
        .unwrap_err()
        .contains("did you mean 'deny'"));
    assert!(parse("deny raed /x")
        .unwrap_err()
        .contains("did you mean 'read'"));
    assert!(parse("deny read").unwrap_err().contains("names nothing"));
    assert!(parse("deny read etc").unwrap_err().contains("absolute"));
    assert!(parse("deny cap sys_admn")
        .unwrap_err()
        .contains("did you mean 'sys_admin'"));
    assert!(parse("deny read /x from=/a from=/b")
        .unwrap_err()
        .contains("twice"));
    assert!(parse("deny read /x/%z").unwrap_err().contains("specifier"));
}

#[test]
fn a_peer_allowance_whose_from_names_the_instance_keeps_no_units() {
    let t = UnitName::new("web@.service");
    let src = || Source::new("/t.conf", 1);
    // In the template's own policy %i widens to *: other instances' programs would reach b.
    let r = Rule::parse("allow signal b.service from=/opt/%i/ctl", Some(&t), src()).unwrap();
    assert_eq!(r.target, Target::Units(vec![]));
    let r = Rule::parse("allow ptrace b.service from=/opt/app/ctl", Some(&t), src()).unwrap();
    assert_eq!(r.target, Target::Units(vec!["b.service".to_string()]));
    // An instance's own policy names its own program.
    let i = UnitName::new("web@a.service");
    let r = Rule::parse("allow signal b.service from=/opt/%i/ctl", Some(&i), src()).unwrap();
    assert_eq!(r.target, Target::Units(vec!["b.service".to_string()]));
}
