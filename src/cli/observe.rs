//! What the running daemon reports: `unitarmor status` (over its D-Bus API, after checking
//! who owns the bus name) and `unitarmor logs` (its records in the journal, through
//! journalctl).

use std::io::Write;

use anyhow::{Context, Result};

/// `unitarmor status`: the table of units, then (for all units) one line of table use;
/// `--json` prints the array of units, `--json --usage` an object with both.
pub async fn status(unit: Option<&str>, json: bool, usage: bool, rules: bool) -> Result<i32> {
    let conn = zbus::connection::Builder::system()
        .method_timeout(std::time::Duration::from_secs(10))
        .build()
        .await
        .context("connecting to the system bus")?;
    crate::api::wait_for_daemon(&conn).await;
    if let Err(e) = crate::api::check_owner(&conn).await {
        eprintln!("unitarmor: {e}");
        return Ok(2);
    }
    let proxy = crate::api::ManagerProxy::new(&conn).await?;
    let mut units = proxy
        .list_units()
        .await
        .context("asking unitarmor.service (is it running?)")?;
    if let Some(u) = unit {
        units.retain(|s| s.unit == u);
        if units.is_empty() {
            eprintln!("{u} is not armored");
            return Ok(1);
        }
    }
    if rules {
        return print_rules(&proxy, unit, json).await;
    }
    // Asked only when printed. A daemon older than this command has no `Usage`: the table is
    // printed all the same, with a line saying so.
    let table_use = if usage || (!json && unit.is_none()) {
        Some(proxy.usage().await.map_err(|e| crate::api::usage_error(&e)))
    } else {
        None
    };
    let mut out = std::io::stdout().lock();
    if json {
        if let Some(table_use) = table_use {
            let table_use = match table_use {
                Ok(u) => u,
                Err(e) => {
                    eprintln!("unitarmor: {e}");
                    return Ok(1);
                }
            };
            let both = serde_json::json!({
                "units": units,
                "usage": crate::api::usage_json(&table_use),
            });
            serde_json::to_writer_pretty(&mut out, &both)?;
        } else {
            serde_json::to_writer_pretty(&mut out, &units)?;
        }
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(
        out,
        "{:<32} {:<8} {:>5} {:>8} {:>8} {:>6}  CGROUPS",
        "UNIT", "MODE", "RULES", "DENIED", "AUDITED", "LOST"
    )?;
    for s in &units {
        let cg = if s.cgroup_ids.is_empty() {
            "-".to_string()
        } else {
            s.cgroup_ids
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        // A user unit (`UNIT~UID`) with its user.
        let name = match crate::systemd::split_user_key(&s.unit) {
            Some((unit, uid)) => format!("{unit} (user {uid})"),
            None => s.unit.clone(),
        };
        writeln!(
            out,
            "{:<32} {:<8} {:>5} {:>8} {:>8} {:>6}  {cg}",
            name, s.mode, s.rules, s.denied, s.audited, s.lost
        )?;
        for e in s.errors.lines() {
            writeln!(out, "  error: {e}")?;
        }
    }
    match table_use {
        Some(Ok(u)) => writeln!(out, "{}", crate::api::usage_line(&u))?,
        Some(Err(e)) => {
            out.flush()?;
            eprintln!("unitarmor: {e}");
        }
        None => {}
    }
    Ok(0)
}

/// `unitarmor status --rules`: how often each rule decided, per unit.
async fn print_rules(
    proxy: &crate::api::ManagerProxy<'_>,
    unit: Option<&str>,
    json: bool,
) -> Result<i32> {
    let rows = proxy.rules(unit.unwrap_or("")).await.map_err(|e| {
        anyhow::anyhow!("asking unitarmor.service for its rule counters (a daemon older than this command has none): {e}")
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(0);
    }
    let mut last = None;
    for r in &rows {
        if last != Some(&r.unit) {
            writeln!(out, "{}", r.unit)?;
            writeln!(
                out,
                "  {:>8} {:>10} {:>8} {:>8}  RULE (SOURCE)",
                "DENIED", "WOULD-DENY", "AUDITED", "ALLOWED"
            )?;
            last = Some(&r.unit);
        }
        writeln!(
            out,
            "  {:>8} {:>10} {:>8} {:>8}  {} ({})",
            r.denied, r.would_deny, r.audited, r.allowed, r.rule, r.source
        )?;
    }
    Ok(0)
}

/// `unitarmor logs`: the journal's unitarmor records, through journalctl.
pub fn logs(
    unit: Option<&str>,
    follow: bool,
    since: Option<&str>,
    audit: bool,
    json: bool,
) -> Result<i32> {
    use std::io::BufRead;

    let mut cmd = std::process::Command::new("journalctl");
    cmd.args(["--no-pager", "-o", "json"]);
    if follow {
        cmd.arg("--follow");
    }
    if let Some(s) = since {
        cmd.args(["--since", s]);
    }
    if let Some(u) = unit {
        cmd.arg(format!("UNITARMOR_UNIT={u}"));
    }
    cmd.arg(crate::journal::DAEMON_RECORDS);
    cmd.arg(format!("MESSAGE_ID={}", crate::journal::MESSAGE_ID_DENIED));
    cmd.arg(format!(
        "MESSAGE_ID={}",
        crate::journal::MESSAGE_ID_SUPPRESSED
    ));
    if audit {
        cmd.arg(format!("MESSAGE_ID={}", crate::journal::MESSAGE_ID_AUDIT));
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running journalctl")?;
    let stdout = child.stdout.take().context("journalctl's output")?;
    let mut out = std::io::stdout().lock();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        if json {
            writeln!(out, "{line}")?;
            continue;
        }
        let Ok(rec) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let field = |k: &str| {
            rec.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_string()
        };
        let micros: i64 = field("__REALTIME_TIMESTAMP").parse().unwrap_or(0);
        if writeln!(
            out,
            "{} {}: {}",
            local_time(micros),
            field("UNITARMOR_UNIT"),
            field("MESSAGE")
        )
        .is_err()
        {
            break; // the reader went away (a pager or head closed the pipe)
        }
    }
    let status = child.wait()?;
    Ok(if status.success() {
        0
    } else {
        status.code().unwrap_or(1)
    })
}

/// `2026-11-28 20:19:02` in local time, from microseconds since the epoch.
fn local_time(micros: i64) -> String {
    let secs = (micros / 1_000_000) as libc::time_t;
    // SAFETY: localtime_r only writes the tm we hand it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return secs.to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}
