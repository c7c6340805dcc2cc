//! The daemon's own D-Bus API on the system bus (`org.unitarmor1`), read by `unitarmor status`.
//! It only reports; the bus policy (dbus/org.unitarmor1.conf) lets only root own the name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zbus::zvariant::Type;
use zbus::{interface, proxy, Connection};

pub const BUS_NAME: &str = "org.unitarmor1";
pub const OBJECT_PATH: &str = "/org/unitarmor1";

/// One armored unit, as `ListUnits` reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct UnitStatus {
    pub unit: String,
    pub mode: String,
    pub policy_id: u32,
    /// Where the unit's cgroup is (or will be created).
    pub cgroup_path: String,
    /// Bound cgroup ids: the unit's cgroup and its sub-cgroups while it runs.
    pub cgroup_ids: Vec<u64>,
    pub rules: u32,
    pub denied: u64,
    pub audited: u64,
    /// Events lost because the ring buffer was full.
    pub lost: u64,
    /// Errors in the unit's files (the last good policy stays in force).
    pub errors: String,
}

/// The [`Usage`] entry of the kernel memory all maps hold, in KiB.
pub const MAP_MEMORY: &str = "kernel_map_kib";

/// How much of one fixed-size kernel table is in use, as `Usage` reports it. A list of named
/// entries rather than a struct: a daemon that reports one table more (or less) still talks
/// to an older `unitarmor status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Usage {
    /// `policy_slots`, `bound_cgroups`, `sub_cgroups`, `expected_paths`, `dfa_cells`,
    /// `accepting_states`, `rule_counters`; and [`MAP_MEMORY`] (KiB, no limit: 0).
    pub name: String,
    pub used: u64,
    pub limit: u64,
}

/// How often one rule of an armored unit's current policy decided, as `Rules` reports it:
/// counted in the kernel since that policy was loaded (a changed policy starts from zero).
/// Besides the unit's own rules, a row for each implicit reason that decided something (an
/// allow-list that named nothing, a protection, an unbuildable path), with source `implicit`
/// or the allow rules' sources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct RuleCount {
    pub unit: String,
    pub rule: String,
    /// FILE:LINE of the rule, or what an implicit row stands for.
    pub source: String,
    pub denied: u64,
    /// Denials `ArmorMode=audit` only reported.
    pub would_deny: u64,
    pub audited: u64,
    pub allowed: u64,
}

/// How a row for a grouped policy's rules ends (`10004 deny read rules, counted together`):
/// the kernel counts such rules together (compile/groups.rs).
pub const GROUP_ROW_END: &str = " rules, counted together";

/// What the daemon last published: when asked (see [`Asks`]), and at the end of the work
/// that changed a policy.
#[derive(Clone, Debug, Default)]
pub struct Published {
    pub units: Vec<UnitStatus>,
    pub usage: Vec<Usage>,
    /// Made only for a call that asks for them ([`Ask::rules`]), and kept until the next
    /// publication: a row for each rule of each unit (a thousand one-rule units and a
    /// 1,000-rule policy made some 2,000 rows, half a MiB the daemon held for nothing).
    pub rules: Option<Vec<RuleCount>>,
}

/// A call's request for a fresh status, and where the main loop says it published one.
#[derive(Debug)]
pub struct Ask {
    /// The rule rows too (`Rules`).
    pub rules: bool,
    pub done: tokio::sync::oneshot::Sender<()>,
}

/// How the API asks the daemon's main loop to publish its status afresh: the loop answers on
/// the sender it is given once it has. Reading the kernel's maps for a status costs a walk of
/// every binding and counter (and a row per rule, for `Rules`); done once a second whether
/// anyone asked or not, it was most of what an idle daemon with a thousand armored units did.
pub type Asks = tokio::sync::mpsc::Sender<Ask>;

/// How long a call waits for the daemon to publish afresh before it answers with what was
/// published last (the main loop may be in a pass, or waiting for PID 1 in a reload).
const FRESH_WAIT: Duration = Duration::from_millis(500);

/// How long a `Rules` call waits when no rows were published since the last publication
/// (they are made only when asked for): there is nothing older to answer with.
const RULES_WAIT: Duration = Duration::from_secs(60);

struct Api {
    status: Arc<Mutex<Published>>,
    asks: Asks,
}

impl Api {
    /// Asks the daemon to publish afresh (with the rule rows if `rules`) and waits for it, at
    /// most `wait`.
    async fn fresh(&self, rules: bool, wait: Duration) {
        let (done, rx) = tokio::sync::oneshot::channel();
        let ask = Ask { rules, done };
        let sent = if wait > FRESH_WAIT {
            // One that may wait long waits for room in the queue too.
            tokio::time::timeout(wait, self.asks.send(ask))
                .await
                .is_ok_and(|r| r.is_ok())
        } else {
            self.asks.try_send(ask).is_ok()
        };
        if sent {
            let _ = tokio::time::timeout(wait, rx).await;
        }
    }

    /// The rule rows published last, if any were made since the last publication.
    fn rows(&self, unit: &str) -> Option<Vec<RuleCount>> {
        let s = self.status.lock().ok()?;
        Some(
            s.rules
                .as_ref()?
                .iter()
                .filter(|r| unit.is_empty() || r.unit == unit)
                .cloned()
                .collect(),
        )
    }
}

#[interface(name = "org.unitarmor1.Manager")]
impl Api {
    /// Every armored unit.
    async fn list_units(&self) -> Vec<UnitStatus> {
        self.fresh(false, FRESH_WAIT).await;
        self.status
            .lock()
            .map(|s| s.units.clone())
            .unwrap_or_default()
    }

    /// Use of the kernel's fixed-size tables: policy slots, bound cgroups, expected paths,
    /// DFA tables.
    async fn usage(&self) -> Vec<Usage> {
        self.fresh(false, FRESH_WAIT).await;
        self.status
            .lock()
            .map(|s| s.usage.clone())
            .unwrap_or_default()
    }

    /// How often each rule of `unit` (every unit if empty) decided. Rows published since the
    /// last publication are answered after [`FRESH_WAIT`], as the other calls are; otherwise
    /// the call waits for the main loop to make them, up to [`RULES_WAIT`], and fails then.
    async fn rules(&self, unit: &str) -> zbus::fdo::Result<Vec<RuleCount>> {
        self.fresh(true, FRESH_WAIT).await;
        if let Some(rows) = self.rows(unit) {
            return Ok(rows);
        }
        self.fresh(true, RULES_WAIT).await;
        self.rows(unit).ok_or_else(|| {
            zbus::fdo::Error::Failed(format!(
                "the daemon did not count the rules within {} s: it is busy; ask again",
                RULES_WAIT.as_secs()
            ))
        })
    }

    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
}

/// Serves the API on `conn` under [`BUS_NAME`]. The name is requested without allowing
/// replacement: no later peer can take it over (a daemon restarted by systemd gets it once
/// the previous one is gone).
pub async fn serve(
    conn: &Connection,
    status: Arc<Mutex<Published>>,
    asks: Asks,
) -> zbus::Result<()> {
    use zbus::fdo::RequestNameFlags;
    conn.object_server()
        .at(OBJECT_PATH, Api { status, asks })
        .await?;
    conn.request_name_with_flags(
        BUS_NAME,
        RequestNameFlags::REPLACE_EXISTING | RequestNameFlags::DO_NOT_QUEUE,
    )
    .await?;
    Ok(())
}

/// Where the daemon runs: the cgroup of unitarmor.service.
const DAEMON_CGROUP_SUFFIX: &str = "/unitarmor.service";

/// Waits (up to 10 s) for the daemon to take its bus name while it is running but still
/// starting: it signals readiness after binding from disk, before it connects to the bus, so
/// that it can start before D-Bus in early boot. Its runtime directory exists while it runs.
pub async fn wait_for_daemon(conn: &Connection) {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(conn).await else {
        return;
    };
    let Ok(name) = zbus::names::BusName::try_from(BUS_NAME) else {
        return;
    };
    for _ in 0..50 {
        if dbus.name_has_owner(name.clone()).await.unwrap_or(true)
            || !std::path::Path::new("/run/unitarmor").exists()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Checks that [`BUS_NAME`] is owned by a process of unitarmor.service. The bus policy lets
/// any root process own the name, and D-Bus cannot tell one root process from another; the
/// kernel can: a process's cgroup says which unit it belongs to, and an armored unit cannot
/// move into another unit's cgroup.
pub async fn check_owner(conn: &Connection) -> Result<(), String> {
    let dbus = zbus::fdo::DBusProxy::new(conn)
        .await
        .map_err(|e| e.to_string())?;
    let name = zbus::names::BusName::try_from(BUS_NAME).map_err(|e| e.to_string())?;
    // No owner: nothing to trust or distrust (the call that follows says the daemon is down).
    if !dbus.name_has_owner(name.clone()).await.unwrap_or(true) {
        return Ok(());
    }
    let pid = dbus
        .get_connection_unix_process_id(name)
        .await
        .map_err(|e| format!("cannot tell who owns {BUS_NAME}: {e}"))?;
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let owner = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("?");
    if owner.ends_with(DAEMON_CGROUP_SUFFIX) {
        Ok(())
    } else {
        Err(format!(
            "{BUS_NAME} is owned by process {pid} in cgroup {owner}, not by unitarmor.service: \
             what it reports cannot be trusted"
        ))
    }
}

#[proxy(
    interface = "org.unitarmor1.Manager",
    default_service = "org.unitarmor1",
    default_path = "/org/unitarmor1"
)]
pub trait Manager {
    fn list_units(&self) -> zbus::Result<Vec<UnitStatus>>;
    fn usage(&self) -> zbus::Result<Vec<Usage>>;
    fn rules(&self, unit: &str) -> zbus::Result<Vec<RuleCount>>;
}

/// `unitarmor status`'s summary line: `policy slots 3/1023, bound cgroups 12/65536, ...`.
pub fn usage_line(usage: &[Usage]) -> String {
    usage
        .iter()
        .map(|u| {
            if u.name == MAP_MEMORY {
                return format!("kernel maps {:.1} MiB", u.used as f64 / 1024.0);
            }
            let full = if u.limit > 0 && u.used * 10 >= u.limit * 9 {
                " (nearly full)"
            } else {
                ""
            };
            format!("{} {}/{}{full}", u.name.replace('_', " "), u.used, u.limit)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `unitarmor status --json --usage`'s `usage` object: name -> {used, limit}.
pub fn usage_json(usage: &[Usage]) -> serde_json::Value {
    usage
        .iter()
        .map(|u| {
            (
                u.name.clone(),
                serde_json::json!({ "used": u.used, "limit": u.limit }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// What to tell the user when the daemon could not report its table use: an older daemon has
/// no `Usage` method (the package was upgraded and the daemon not restarted).
pub fn usage_error(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, _, _)
            if name.as_str() == "org.freedesktop.DBus.Error.UnknownMethod" =>
        {
            "the running unitarmor daemon is older than this command and does not report table \
             use; restart unitarmor.service"
                .to_string()
        }
        e => format!("unitarmor.service did not report table use: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(name: &str, used: u64, limit: u64) -> Usage {
        Usage {
            name: name.into(),
            used,
            limit,
        }
    }

    #[test]
    fn summary_line() {
        let usage = [u("policy_slots", 3, 1023), u("bound_cgroups", 60000, 65536)];
        assert_eq!(
            usage_line(&usage),
            "policy slots 3/1023, bound cgroups 60000/65536 (nearly full)"
        );
        assert_eq!(
            usage_json(&usage)["policy_slots"],
            serde_json::json!({"used": 3, "limit": 1023})
        );
    }

    #[test]
    fn map_memory_has_no_limit_to_print() {
        let usage = [u("dfa_cells", 96, 2097152), u(MAP_MEMORY, 41_472, 0)];
        assert_eq!(
            usage_line(&usage),
            "dfa cells 96/2097152, kernel maps 40.5 MiB"
        );
    }
}
