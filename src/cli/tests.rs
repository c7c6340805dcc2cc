use super::*;
use crate::policy::Rule;

#[test]
fn show_lists_protections_and_exemptions() {
    let mut p = Policy {
        configured: true,
        rules: vec![Rule::parse("deny read /x", None, Source::new("/a.conf", 2)).unwrap()],
        ..Default::default()
    };
    p.exempt.insert(Protection::Bpf);
    p.exempt_sources
        .insert(Protection::Bpf, Source::new("/a.conf", 3));
    let lines = protection_lines(&p);
    let text = lines.join("\n");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('#') && l.len() <= LINE_WIDTH),
        "{text}"
    );
    assert!(
        text.contains("#   unit-files      a unit that rewrites"),
        "{text}"
    );
    assert!(text.contains("refuses writes to /etc/systemd/"), "{text}");
    assert!(text.contains("/etc/rc.local"), "{text}");
    assert!(
        text.contains("refuses connecting to /run/systemd/private"),
        "{text}"
    );
    assert!(
        text.ends_with("#   bpf             lifted by ArmorExempt= at /a.conf:3"),
        "{text}"
    );
    assert_eq!(text.matches("bpf() can read").count(), 0, "{text}");
    for prot in Protection::ALL
        .into_iter()
        .filter(|x| *x != Protection::Bpf)
    {
        assert!(
            text.contains(&format!("#   {:NAME_WIDTH$}", prot.name())),
            "{prot}: {text}"
        );
    }
    let json = protections_json(&p);
    assert_eq!(json.as_array().unwrap().len(), Protection::ALL.len() - 1);
    assert_eq!(json[0]["name"], "unit-files");
    assert_eq!(exempt_json(&p)[0]["source"]["line"], 3);
    p.rules.clear();
    assert_eq!(protection_lines(&p).len(), 1);
    assert!(protections_json(&p).as_array().unwrap().is_empty());
}

#[test]
fn wrap_breaks_at_spaces() {
    assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
    assert_eq!(wrap("abcdefgh x", 3), ["abcdefgh", "x"]);
    assert_eq!(wrap("", 3), [""]);
}
