//! The dry run's report for people: what would break, what loosens, then counts of the rest,
//! with the times of the records in UTC.

use super::{Change, Group, Report};
use crate::policy::Mode;

/// `2026-11-30 09:15:02` (UTC) for microseconds since the epoch.
pub fn utc(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The human report: what breaks, what loosens, then counts of the rest.
pub fn render(unit: &str, mode: Mode, report: &Report) -> String {
    let mut out = String::new();
    let (breaks, loosens) = (report.count(Change::Breaks), report.count(Change::Loosens));
    out.push_str(&format!(
        "{unit}: {} journal records replayed against the policy on disk (ArmorMode={}): \
         {breaks} operations would break, {loosens} would be allowed that were denied\n",
        report.records,
        mode.as_str()
    ));
    for (change, title) in [
        (
            Change::Breaks,
            "Would break (went through when recorded, refused now):",
        ),
        (
            Change::Loosens,
            "Loosened (refused when recorded, goes through now):",
        ),
    ] {
        let list: Vec<&Group> = report
            .groups
            .iter()
            .filter(|g| g.change == change)
            .collect();
        if list.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{title}\n"));
        for g in list {
            let suppressed = match g.suppressed {
                0 => String::new(),
                n => format!(" and {n} suppressed"),
            };
            out.push_str(&format!(
                "  {} {} {}\n    recorded: {} ×{}{suppressed}, {} .. {} UTC, by \"{}\" ({})\n    now:      {}{}\n",
                g.class,
                g.operation,
                g.object,
                g.recorded,
                g.records,
                utc(g.first),
                utc(g.last),
                g.recorded_rule,
                g.recorded_source,
                g.now.verdict,
                match (&g.now.rule, &g.now.source) {
                    (Some(r), Some(s)) => format!(", by \"{r}\" ({s})"),
                    (Some(r), None) => format!(", by \"{r}\""),
                    _ => String::new(),
                }
            ));
        }
    }
    let same: Vec<&Group> = report
        .groups
        .iter()
        .filter(|g| g.change == Change::Same)
        .collect();
    let n: u64 = same.iter().map(|g| g.records + g.suppressed).sum();
    out.push_str(&format!(
        "\nunchanged: {} operations ({n} records)\n",
        same.len()
    ));
    for s in &report.not_replayed {
        out.push_str(&format!(
            "not replayed: {} records ({})\n",
            s.records, s.reason
        ));
    }
    out
}
