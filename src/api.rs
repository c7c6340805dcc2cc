//! The daemon's own D-Bus API on the system bus (`org.unitarmor1`), read by `unitarmor status`.
//! It only reports; the bus policy (dbus/org.unitarmor1.conf) lets only root own the name.

use std::sync::{Arc, Mutex};

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
    /// Rules of classes this version does not enforce yet.
    pub unenforced: u32,
    pub denied: u64,
    pub audited: u64,
    /// Events lost because the ring buffer was full.
    pub lost: u64,
    /// Errors in the unit's files (the last good policy stays in force).
    pub errors: String,
}

struct Api {
    status: Arc<Mutex<Vec<UnitStatus>>>,
}

#[interface(name = "org.unitarmor1.Manager")]
impl Api {
    /// Every armored unit.
    fn list_units(&self) -> Vec<UnitStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
}

/// Serves the API on `conn` under [`BUS_NAME`].
pub async fn serve(conn: &Connection, status: Arc<Mutex<Vec<UnitStatus>>>) -> zbus::Result<()> {
    conn.object_server().at(OBJECT_PATH, Api { status }).await?;
    conn.request_name(BUS_NAME).await?;
    Ok(())
}

#[proxy(
    interface = "org.unitarmor1.Manager",
    default_service = "org.unitarmor1",
    default_path = "/org/unitarmor1"
)]
pub trait Manager {
    fn list_units(&self) -> zbus::Result<Vec<UnitStatus>>;
}
