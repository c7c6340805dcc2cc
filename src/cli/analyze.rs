//! `unitarmor analyze`: one view of how exposed a service is, per area (files, exec, network,
//! capabilities, processes, kernel): whether systemd's own sandboxing (the unit's directives,
//! as PID 1 reports them), unitarmor (its rules, mode and implicit protections), both or
//! neither confine it, with what was seen at run time (denials, rules that never decided) and a
//! one-line suggestion for each gap. The assessment ([`assess`]) is pure; [`analyze`] gathers
//! its inputs from PID 1 and the daemon over D-Bus.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;
use zbus::{OwnedVariant, Variant};

use crate::api::{RuleCount, UnitStatus};
use crate::policy::named::Lookup;
use crate::policy::specifiers::UnitName;
use crate::policy::{resolve, Class, Diagnostics, Mode, Policy, Protection};

/// The sandboxing directives `analyze` reads, as PID 1 reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sandbox {
    pub protect_system: String,
    pub protect_home: String,
    pub read_only_paths: usize,
    pub inaccessible_paths: usize,
    pub no_exec_paths: usize,
    pub exec_paths: usize,
    pub private_network: bool,
    pub ip_address_deny: usize,
    /// `RestrictAddressFamilies=` restricts (an allow-list, or a deny list).
    pub restrict_address_families: bool,
    /// Capabilities in the bounding set (41 or more: all).
    pub bounding_caps: u32,
    pub user: String,
    pub dynamic_user: bool,
    pub protect_proc: String,
    pub protect_kernel_modules: bool,
    pub protect_kernel_tunables: bool,
    pub protect_control_groups: bool,
    /// `RestrictNamespaces=` refuses some namespace types.
    pub restrict_namespaces: bool,
    pub system_call_filter: bool,
    pub private_devices: bool,
    pub memory_deny_write_execute: bool,
}

impl Sandbox {
    /// From the `org.freedesktop.systemd1.Service` properties (a missing one counts as unset).
    pub fn from_properties(p: &HashMap<String, OwnedVariant>) -> Sandbox {
        let get = |k: &str| -> Option<&Variant<'static>> { p.get(k).map(|v| &**v) };
        let s = |k: &str| match get(k) {
            Some(Variant::Str(s)) => s.to_string(),
            _ => String::new(),
        };
        let b = |k: &str| matches!(get(k), Some(Variant::Bool(true)));
        let len = |k: &str| match get(k) {
            Some(Variant::Array(a)) => a.len(),
            _ => 0,
        };
        // (b as): a deny list when the flag is false, an allow-list when true; empty: unset.
        let list_set = |k: &str| match get(k) {
            Some(Variant::Structure(st)) => st
                .fields()
                .get(1)
                .is_some_and(|f| matches!(f, Variant::Array(a) if !a.is_empty())),
            _ => false,
        };
        let caps = match get("CapabilityBoundingSet") {
            Some(Variant::U64(m)) => m.count_ones(),
            _ => 64,
        };
        // RestrictNamespaces: the namespace types allowed; all of them (or unset) restricts none.
        let restrict_namespaces = match get("RestrictNamespaces") {
            Some(Variant::U64(m)) => m & ALL_NAMESPACES != ALL_NAMESPACES,
            _ => false,
        };
        Sandbox {
            protect_system: s("ProtectSystem"),
            protect_home: s("ProtectHome"),
            read_only_paths: len("ReadOnlyPaths"),
            inaccessible_paths: len("InaccessiblePaths"),
            no_exec_paths: len("NoExecPaths"),
            exec_paths: len("ExecPaths"),
            private_network: b("PrivateNetwork"),
            ip_address_deny: len("IPAddressDeny"),
            restrict_address_families: list_set("RestrictAddressFamilies"),
            bounding_caps: caps,
            user: s("User"),
            dynamic_user: b("DynamicUser"),
            protect_proc: s("ProtectProc"),
            protect_kernel_modules: b("ProtectKernelModules"),
            protect_kernel_tunables: b("ProtectKernelTunables"),
            protect_control_groups: b("ProtectControlGroups"),
            restrict_namespaces,
            system_call_filter: list_set("SystemCallFilter"),
            private_devices: b("PrivateDevices"),
            memory_deny_write_execute: b("MemoryDenyWriteExecute"),
        }
    }

    fn runs_as_root(&self) -> bool {
        !self.dynamic_user && (self.user.is_empty() || self.user == "root" || self.user == "0")
    }
}

/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME.
const ALL_NAMESPACES: u64 = 0x0002_0000
    | 0x0200_0000
    | 0x0400_0000
    | 0x0800_0000
    | 0x1000_0000
    | 0x2000_0000
    | 0x4000_0000
    | 0x0000_0080;

/// Who confines an area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cover {
    Both,
    Systemd,
    Unitarmor,
    Neither,
}

impl Cover {
    fn of(systemd: bool, armor: bool) -> Cover {
        match (systemd, armor) {
            (true, true) => Cover::Both,
            (true, false) => Cover::Systemd,
            (false, true) => Cover::Unitarmor,
            (false, false) => Cover::Neither,
        }
    }

    /// Exposure points: 2 for an area nothing confines, 1 for one confined once.
    fn exposure(self) -> u32 {
        match self {
            Cover::Both => 0,
            Cover::Systemd | Cover::Unitarmor => 1,
            Cover::Neither => 2,
        }
    }

    fn letter(self) -> &'static str {
        match self {
            Cover::Both => "both",
            Cover::Systemd => "systemd",
            Cover::Unitarmor => "armor",
            Cover::Neither => "-",
        }
    }
}

/// One area of a unit's exposure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Area {
    pub area: &'static str,
    pub cover: Cover,
    /// What confines it on systemd's side (directives) and on unitarmor's (rules, protections).
    pub systemd: Vec<String>,
    pub unitarmor: Vec<String>,
    /// What to do about a gap (none when both confine it).
    pub suggestion: Option<String>,
}

/// A unit's assessment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub unit: String,
    /// Whether the daemon armors it now, and in which mode.
    pub armored: bool,
    pub mode: String,
    /// Sum of the areas' exposure points (0 best, 12 worst).
    pub exposure: u32,
    pub areas: Vec<Area>,
    pub denied: u64,
    pub audited: u64,
    pub lost: u64,
    /// Rules that have not decided anything since the policy was loaded.
    pub never_decided: Vec<String>,
}

/// Assesses a unit from systemd's directives, its policy as its files say it, and what the
/// daemon reports (None: not armored now).
pub fn assess(
    unit: &str,
    sandbox: &Sandbox,
    policy: &Policy,
    status: Option<&UnitStatus>,
    rules: &[RuleCount],
) -> Report {
    let armored = status.is_some() && policy.mode != Mode::Off;
    let enforcing = armored && status.is_some_and(|s| s.mode == "enforce");
    let rules_of = |classes: &[Class]| -> Vec<String> {
        if !enforcing {
            return Vec::new();
        }
        let n = policy
            .rules
            .iter()
            .filter(|r| classes.contains(&r.class))
            .count();
        let allow = policy
            .rules
            .iter()
            .any(|r| classes.contains(&r.class) && r.action == crate::policy::Action::Allow);
        match (n, allow) {
            (0, _) => Vec::new(),
            (n, true) => vec![format!("{n} rule(s), an allow-list")],
            (n, false) => vec![format!("{n} rule(s)")],
        }
    };
    let protections = |ps: &[Protection]| -> Vec<String> {
        if !enforcing {
            return Vec::new();
        }
        ps.iter()
            .filter(|p| !policy.is_exempt(**p))
            .map(|p| format!("protection {}", p.name()))
            .collect()
    };
    let mut areas = Vec::new();
    let mut area =
        |name: &'static str, systemd: Vec<String>, armor: Vec<String>, gaps: [&str; 3]| {
            let cover = Cover::of(!systemd.is_empty(), !armor.is_empty());
            let suggestion = match cover {
                Cover::Both => None,
                Cover::Systemd => Some(gaps[0].to_string()),
                Cover::Unitarmor => Some(gaps[1].to_string()),
                Cover::Neither => Some(gaps[2].to_string()),
            };
            areas.push(Area {
                area: name,
                cover,
                systemd,
                unitarmor: armor,
                suggestion,
            });
        };
    let s = sandbox;
    let mut files = Vec::new();
    if matches!(
        s.protect_system.as_str(),
        "strict" | "full" | "yes" | "true"
    ) {
        files.push(format!("ProtectSystem={}", s.protect_system));
    }
    if !s.protect_home.is_empty() && s.protect_home != "no" {
        files.push(format!("ProtectHome={}", s.protect_home));
    }
    if s.read_only_paths + s.inaccessible_paths > 0 {
        files.push(format!(
            "{} ReadOnlyPaths=/InaccessiblePaths=",
            s.read_only_paths + s.inaccessible_paths
        ));
    }
    area(
        "files",
        files,
        rules_of(&[Class::Read, Class::Write]),
        [
            "systemd's directives leave reads open: deny the unit's secrets (deny read ...) or list what it reads (allow read ...)",
            "add ProtectSystem=strict and ReadWritePaths= for a read-only view of the system under the rules",
            "add ProtectSystem=strict, and deny read of secrets or an allow-list (ArmorPolicy=@systemd names its own directories)",
        ],
    );
    let mut exec = Vec::new();
    if s.no_exec_paths + s.exec_paths > 0 {
        exec.push("NoExecPaths=/ExecPaths=".to_string());
    }
    if s.memory_deny_write_execute {
        exec.push("MemoryDenyWriteExecute=yes".to_string());
    }
    area(
        "exec",
        exec,
        rules_of(&[Class::Exec]),
        [
            "an exec allow-list names the programs it may run (allow exec, ArmorPolicy=@systemd for its own)",
            "add MemoryDenyWriteExecute=yes: in-memory code is out of reach of path rules",
            "add an exec allow-list (allow exec ...) and MemoryDenyWriteExecute=yes",
        ],
    );
    let mut net = Vec::new();
    if s.private_network {
        net.push("PrivateNetwork=yes".to_string());
    }
    if s.ip_address_deny > 0 {
        net.push("IPAddressDeny=".to_string());
    }
    if s.restrict_address_families {
        net.push("RestrictAddressFamilies=".to_string());
    }
    area(
        "network",
        net,
        rules_of(&[Class::Net, Class::Connect, Class::Bind]),
        [
            "name the ports it connects to and listens on (allow connect/bind tcp:...)",
            "add RestrictAddressFamilies= (or PrivateNetwork=yes if it needs no network)",
            "add PrivateNetwork=yes if it needs no network; else RestrictAddressFamilies= and allow connect/bind rules",
        ],
    );
    let mut caps = Vec::new();
    if !s.runs_as_root() {
        caps.push(format!(
            "runs as {}",
            if s.dynamic_user {
                "a dynamic user"
            } else {
                s.user.as_str()
            }
        ));
    }
    if s.bounding_caps < 41 {
        caps.push(format!("CapabilityBoundingSet= ({} left)", s.bounding_caps));
    }
    area(
        "capabilities",
        caps,
        rules_of(&[Class::Cap]),
        [
            "refuse the capabilities it never uses, live (deny cap sys_admin ...)",
            "add CapabilityBoundingSet= or a non-root User=",
            "run it as a non-root User=, or add CapabilityBoundingSet= or deny cap rules",
        ],
    );
    let mut procs = Vec::new();
    if matches!(
        s.protect_proc.as_str(),
        "invisible" | "noaccess" | "ptraceable"
    ) {
        procs.push(format!("ProtectProc={}", s.protect_proc));
    }
    area(
        "processes",
        procs,
        protections(&[Protection::Signal, Protection::Ptrace]),
        [
            "armor it: signals, ptrace and /proc/PID/ writes across the unit boundary are then refused",
            "add ProtectProc=invisible to hide other processes",
            "armor it (signals and ptrace stay in the unit) and add ProtectProc=invisible",
        ],
    );
    let mut kernel = Vec::new();
    for (on, name) in [
        (s.protect_kernel_modules, "ProtectKernelModules=yes"),
        (s.protect_kernel_tunables, "ProtectKernelTunables=yes"),
        (s.protect_control_groups, "ProtectControlGroups=yes"),
        (s.restrict_namespaces, "RestrictNamespaces="),
        (s.system_call_filter, "SystemCallFilter="),
        (s.private_devices, "PrivateDevices=yes"),
    ] {
        if on {
            kernel.push(name.to_string());
        }
    }
    area(
        "kernel",
        kernel,
        protections(&[
            Protection::Modules,
            Protection::KernelSettings,
            Protection::Bpf,
            Protection::Mount,
            Protection::Userns,
        ]),
        [
            "armor it: modules, kernel settings, bpf(), mounts and user namespaces are then refused",
            "add ProtectKernelModules=, ProtectKernelTunables=, SystemCallFilter=@system-service",
            "armor it, and add ProtectKernelModules=, ProtectKernelTunables=, SystemCallFilter=@system-service",
        ],
    );
    let exposure = areas.iter().map(|a| a.cover.exposure()).sum();
    let never_decided = rules
        .iter()
        .filter(|r| r.unit == unit && !r.rule.ends_with(crate::api::GROUP_ROW_END))
        .filter(|r| r.denied + r.would_deny + r.audited + r.allowed == 0)
        .filter(|r| r.source != "implicit")
        .map(|r| format!("{} ({})", r.rule, r.source))
        .collect();
    Report {
        unit: unit.to_string(),
        armored,
        mode: status.map_or_else(|| "off".to_string(), |s| s.mode.clone()),
        exposure,
        areas,
        denied: status.map_or(0, |s| s.denied),
        audited: status.map_or(0, |s| s.audited),
        lost: status.map_or(0, |s| s.lost),
        never_decided,
    }
}

/// `unitarmor analyze [UNIT] [--json]`: one unit in detail, or every loaded service as a table
/// sorted by exposure (most exposed first).
pub async fn analyze(unit: Option<&str>, json: bool) -> Result<i32> {
    let conn = zbus::connection::Builder::system()
        .method_timeout(std::time::Duration::from_secs(10))
        .build()
        .await
        .context("connecting to the system bus")?;
    let manager = crate::systemd::ManagerProxy::new(&conn).await?;
    let names: Vec<String> = match unit {
        Some(u) => vec![u.to_string()],
        None => manager
            .list_units()
            .await?
            .into_iter()
            .map(|r| r.0)
            .filter(|n| n.ends_with(".service"))
            .collect(),
    };
    // What the daemon armors; a daemon that is not running armors nothing.
    crate::api::wait_for_daemon(&conn).await;
    let (statuses, rules) = match crate::api::ManagerProxy::new(&conn).await {
        Ok(p) => (
            p.list_units().await.unwrap_or_default(),
            p.rules("").await.unwrap_or_default(),
        ),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let mut reports = Vec::new();
    for name in &names {
        let path = manager
            .load_unit(name)
            .await
            .with_context(|| format!("asking systemd for {name}"))?;
        let props = zbus::fdo::PropertiesProxy::builder(&conn)
            .destination("org.freedesktop.systemd1")
            .path(path.clone())
            .build()
            .await?;
        let service = props
            .get_all(zbus::names::InterfaceName::try_from(
                "org.freedesktop.systemd1.Service",
            )?)
            .await
            .unwrap_or_default();
        let info = crate::systemd::unit_info(&conn, path).await?;
        let policy = policy_of(&info.files, name);
        let status = statuses.iter().find(|s| s.unit == *name);
        reports.push(assess(
            name,
            &Sandbox::from_properties(&service),
            &policy,
            status,
            &rules,
        ));
    }
    reports.sort_by(|a, b| b.exposure.cmp(&a.exposure).then(a.unit.cmp(&b.unit)));
    let mut out = std::io::stdout().lock();
    if json {
        match unit {
            Some(_) => serde_json::to_writer_pretty(&mut out, &reports[0])?,
            None => serde_json::to_writer_pretty(&mut out, &reports)?,
        }
        writeln!(out)?;
        return Ok(0);
    }
    if unit.is_some() {
        print_one(&mut out, &reports[0])?;
    } else {
        writeln!(
            out,
            "{:<40} {:>8} {:<9} {:<9} {:<9} {:<9} {:<9} {:<9}",
            "UNIT", "EXPOSURE", "FILES", "EXEC", "NETWORK", "CAPS", "PROCS", "KERNEL"
        )?;
        for r in &reports {
            let c: Vec<&str> = r.areas.iter().map(|a| a.cover.letter()).collect();
            writeln!(
                out,
                "{:<40} {:>5}/12 {:<9} {:<9} {:<9} {:<9} {:<9} {:<9}",
                r.unit, r.exposure, c[0], c[1], c[2], c[3], c[4], c[5]
            )?;
        }
    }
    Ok(0)
}

fn print_one(out: &mut impl std::io::Write, r: &Report) -> Result<()> {
    writeln!(
        out,
        "{}: exposure {}/12, {}",
        r.unit,
        r.exposure,
        if r.armored {
            format!("armored ({})", r.mode)
        } else {
            "not armored".to_string()
        }
    )?;
    for a in &r.areas {
        writeln!(out, "  {:<13} {}", a.area, a.cover.letter())?;
        if !a.systemd.is_empty() {
            writeln!(out, "    systemd:   {}", a.systemd.join(", "))?;
        }
        if !a.unitarmor.is_empty() {
            writeln!(out, "    unitarmor: {}", a.unitarmor.join(", "))?;
        }
        if let Some(s) = &a.suggestion {
            writeln!(out, "    suggest:   {s}")?;
        }
    }
    if r.armored {
        writeln!(
            out,
            "  seen: {} denied, {} audited, {} lost",
            r.denied, r.audited, r.lost
        )?;
        for n in &r.never_decided {
            writeln!(out, "  never decided: {n}")?;
        }
    }
    Ok(())
}

/// The unit's policy as its files (those systemd loaded) say it.
fn policy_of(files: &[PathBuf], unit: &str) -> Policy {
    let mut diags = Diagnostics::default();
    resolve::merge(
        &Lookup::system(),
        files,
        Some(&UnitName::new(unit)),
        &mut diags,
    )
}

#[cfg(test)]
#[path = "analyze_tests.rs"]
mod tests;
