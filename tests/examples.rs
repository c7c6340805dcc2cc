//! The shipped examples and named policies pass `unitarmor check`, and `check` reports bad
//! input the way the policy language issue asks: file:line, severity, exit status.

use std::path::Path;
use std::process::Command;

fn unitarmor(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unitarmor"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn every_example_drop_in_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root.join("drop-ins")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            files.push(f.unwrap().path().display().to_string());
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    let policies = root.join("policies").display().to_string();
    let mut args = vec!["check", "--policy-dir", policies.as_str()];
    args.extend(files.iter().map(String::as_str));
    let (code, out) = unitarmor(&args);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("error"), "{out}");
}

#[test]
fn check_reports_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("armor.conf");
    std::fs::write(&f, "[X-Armor]\nArmorPolicy=deny read /ok\nArmorPolicy=deny cap sys_admn\nArmorPolicy=deny read etc\n").unwrap();
    let file = f.display().to_string();
    let (code, out) = unitarmor(&["check", &file]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "{file}:3: error: unknown capability 'sys_admn'; did you mean 'sys_admin'?"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{file}:4: error: 'etc' is not an absolute path")),
        "{out}"
    );
    let (code, json) = unitarmor(&["check", "--json", &file]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{json}");
}

#[test]
fn show_prints_each_rule_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("etc/systemd/system/web@.service.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        dir.path().join("etc/systemd/system/web@.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .unwrap();
    std::fs::write(
        d.join("armor.conf"),
        "[X-Armor]\nArmorMode=audit\nArmorPolicy=allow write /srv/%i/\n",
    )
    .unwrap();
    let root = dir.path().display().to_string();
    let (code, out) = unitarmor(&["show", "--root", &root, "web@site.service"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ArmorMode=audit"), "{out}");
    assert!(out.contains("ArmorPolicy=allow write /srv/site/"), "{out}");
    assert!(out.contains("web@.service.d/armor.conf:3"), "{out}");
}

#[test]
fn check_rejects_unknown_protections_and_warns_for_exemptions() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("armor.conf");
    std::fs::write(
        &f,
        "[X-Armor]\nArmorPolicy=deny read /ok\nArmorExempt=bpf ptrac\n\
         ArmorPolicy=allow connect unix:/run/app.sock unix:@app-*\n",
    )
    .unwrap();
    let file = f.display().to_string();
    let (code, out) = unitarmor(&["check", &file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{file}:3: error: unknown protection 'ptrac' in ArmorExempt="
        )),
        "{out}"
    );
    assert!(out.contains("did you mean 'ptrace'?"), "{out}");
    assert!(
        out.contains(&format!(
            "{file}:3: warning: ArmorExempt=bpf: this unit may use bpf()"
        )),
        "{out}"
    );
    assert!(!out.contains(&format!("{file}:4: error")), "{out}");
}

#[test]
fn show_lists_implicit_protections_and_exemptions() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("armor.conf");
    std::fs::write(
        &f,
        "[X-Armor]\nArmorPolicy=deny read /x\nArmorExempt=mount\n\
         ArmorPolicy=allow connect unix:@app-*\n",
    )
    .unwrap();
    let file = f.display().to_string();
    let (code, out) = unitarmor(&["show", &file]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ArmorPolicy=allow connect unix:@app-*"),
        "{out}"
    );
    assert!(out.contains("# implicit protections"), "{out}");
    assert!(
        out.contains("#   unit-files      a unit that rewrites"),
        "{out}"
    );
    assert!(out.contains("refuses writes to /etc/systemd/"), "{out}");
    assert!(
        out.contains("refuses connecting to /run/systemd/private"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "#   mount           lifted by ArmorExempt= at {file}:3"
        )),
        "{out}"
    );
    let (code, json) = unitarmor(&["show", "--json", &file]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v[0]["protections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 12, "{json}");
    assert!(
        !names.contains(&"mount") && names.contains(&"bpf"),
        "{json}"
    );
    assert_eq!(v[0]["exempt"][0]["name"], "mount");
    assert_eq!(v[0]["exempt"][0]["source"]["line"], 3);
    assert_eq!(v[0]["policy"]["exempt"][0], "mount");
}
