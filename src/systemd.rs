//! systemd over D-Bus: the typed proxies the daemon uses (declared once, here), and the unit
//! facts it needs: which files configure a unit, its slice and its cgroup.

use std::path::PathBuf;

use anyhow::{Context, Result};
use zbus::OwnedObjectPath;
use zbus::{proxy, Connection};

/// One row of `ListUnits`.
pub type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    fn subscribe(&self) -> zbus::Result<()>;
    fn list_units(&self) -> zbus::Result<Vec<UnitRow>>;
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    #[zbus(signal)]
    fn unit_new(&self, id: String, unit: OwnedObjectPath) -> zbus::Result<()>;
    #[zbus(signal)]
    fn reloading(&self, active: bool) -> zbus::Result<()>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Unit {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn fragment_path(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn drop_in_paths(&self) -> zbus::Result<Vec<String>>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Service {
    #[zbus(property)]
    fn slice(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn control_group(&self) -> zbus::Result<String>;
}

/// What the daemon needs to know about a loaded service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitInfo {
    pub name: String,
    /// Fragment first, then drop-ins, in the order systemd applies them.
    pub files: Vec<PathBuf>,
    pub slice: String,
    /// The unit's cgroup path below the cgroup root while it runs, empty otherwise.
    pub control_group: String,
}

/// Reads a loaded unit's files, slice and cgroup.
pub async fn unit_info(conn: &Connection, path: OwnedObjectPath) -> Result<UnitInfo> {
    let unit = UnitProxy::builder(conn)
        .path(path.clone())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let name = unit.id().await.context("reading Id")?;
    let mut files = Vec::new();
    let fragment = unit.fragment_path().await.unwrap_or_default();
    if !fragment.is_empty() {
        files.push(PathBuf::from(fragment));
    }
    files.extend(
        unit.drop_in_paths()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(PathBuf::from),
    );
    let service = ServiceProxy::builder(conn)
        .path(path)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let slice = service.slice().await.unwrap_or_default();
    let control_group = service.control_group().await.unwrap_or_default();
    Ok(UnitInfo {
        name,
        files,
        slice,
        control_group,
    })
}

/// The `Slice=` a unit's files set (the last assignment wins, as in systemd), for units that
/// are not loaded yet.
pub fn slice_from_files(files: &[std::path::PathBuf]) -> Option<String> {
    let mut slice = None;
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let mut section = "";
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line;
            } else if let Some(v) = line.strip_prefix("Slice=") {
                if ["[Service]", "[Scope]", "[Socket]", "[Mount]", "[Swap]"].contains(&section) {
                    slice = Some(v.trim().to_string()).filter(|v| !v.is_empty());
                }
            }
        }
    }
    slice
}

/// The cgroup path systemd gives a slice: `a-b.slice` lives at `/a.slice/a-b.slice`,
/// `-.slice` is the root.
pub fn slice_path(slice: &str) -> String {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return String::new();
    };
    if stem == "-" || stem.is_empty() {
        return String::new();
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&cg_escape(&format!("{prefix}.slice")));
    }
    path
}

/// systemd's cgroup name escaping: names that could clash with cgroupfs files get a `_`.
pub fn cg_escape(name: &str) -> String {
    let clash = name.starts_with('_')
        || name.starts_with('.')
        || name.starts_with("cgroup.")
        || matches!(name, "notify_on_release" | "release_agent" | "tasks");
    if clash {
        format!("_{name}")
    } else {
        name.to_string()
    }
}

/// The cgroup path a unit gets in `slice` when it starts.
pub fn expected_cgroup(slice: &str, unit: &str) -> String {
    format!("{}/{}", slice_path(slice), cg_escape(unit))
}

/// The slice systemd puts a unit in when its files say nothing: instances of a template go to
/// `system-PREFIX.slice`, everything else to `system.slice`.
pub fn default_slice(unit: &str) -> String {
    match unit.split_once('@') {
        Some((prefix, _)) => format!("system-{}.slice", escape_slice_part(prefix)),
        None => "system.slice".to_string(),
    }
}

fn escape_slice_part(s: &str) -> String {
    // unit_name_build_from_type escapes '-' in the prefix as \x2d.
    s.replace('-', "\\x2d")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_setting_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.service");
        let b = dir.path().join("b.conf");
        std::fs::write(&a, "[Unit]\nSlice=no.slice\n[Service]\nSlice=one.slice\n").unwrap();
        std::fs::write(&b, "[Service]\nSlice=two.slice\n").unwrap();
        assert_eq!(
            slice_from_files(std::slice::from_ref(&a)).as_deref(),
            Some("one.slice")
        );
        assert_eq!(slice_from_files(&[a, b]).as_deref(), Some("two.slice"));
    }

    #[test]
    fn cgroup_paths_like_systemd() {
        assert_eq!(slice_path("system.slice"), "/system.slice");
        assert_eq!(slice_path("-.slice"), "");
        assert_eq!(slice_path("system-t.slice"), "/system.slice/system-t.slice");
        assert_eq!(
            expected_cgroup("system.slice", "demo.service"),
            "/system.slice/demo.service"
        );
        assert_eq!(
            expected_cgroup("system-t.slice", "t@x.service"),
            "/system.slice/system-t.slice/t@x.service"
        );
        assert_eq!(default_slice("t@x.service"), "system-t.slice");
        assert_eq!(default_slice("a-b@x.service"), "system-a\\x2db.slice");
        assert_eq!(cg_escape("cgroup.x"), "_cgroup.x");
    }
}
