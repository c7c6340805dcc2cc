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
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    #[zbus(signal)]
    fn unit_new(&self, id: String, unit: OwnedObjectPath) -> zbus::Result<()>;
    #[zbus(signal)]
    fn unit_removed(&self, id: String, unit: OwnedObjectPath) -> zbus::Result<()>;
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

/// Reads a loaded unit's files, slice and cgroup. The five properties are asked at once: each
/// is a round trip to PID 1, and under load its wake-ups, not its work, are what they cost.
pub async fn unit_info(conn: &Connection, path: OwnedObjectPath) -> Result<UnitInfo> {
    let unit = UnitProxy::builder(conn)
        .path(path.clone())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let service = ServiceProxy::builder(conn)
        .path(path)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let (name, fragment, drop_ins, slice, control_group) = tokio::join!(
        unit.id(),
        unit.fragment_path(),
        unit.drop_in_paths(),
        service.slice(),
        service.control_group()
    );
    let name = name.context("reading Id")?;
    let mut files = Vec::new();
    let fragment = fragment.unwrap_or_default();
    if !fragment.is_empty() {
        files.push(PathBuf::from(fragment));
    }
    files.extend(drop_ins.unwrap_or_default().into_iter().map(PathBuf::from));
    Ok(UnitInfo {
        name,
        files,
        slice: slice.unwrap_or_default(),
        control_group: control_group.unwrap_or_default(),
    })
}

/// The `Slice=` a unit's files set (the last assignment wins, as in systemd), for units that
/// are not loaded yet. Files are read as drop-ins are ([`crate::policy::dropin::read_limited`]):
/// never a FIFO or a device, never more than the size limit.
pub fn slice_from_files(files: &[std::path::PathBuf]) -> Option<String> {
    slice_from_files_from(files, &mut |f| crate::policy::dropin::read_shared(f))
}

/// [`slice_from_files`], reading each file with `read`.
pub fn slice_from_files_from(
    files: &[std::path::PathBuf],
    read: &mut crate::policy::resolve::Read,
) -> Option<String> {
    let mut slice = None;
    let finder = memchr::memmem::Finder::new(b"Slice=");
    for f in files {
        let Ok(bytes) = read(f) else {
            continue;
        };
        // Most files set no slice (a 10,000-rule drop-in is half a megabyte of text).
        if finder.find(&bytes).is_none() {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
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

/// The cgroup controllers systemd 252 to 257 knows (`cgroup_controller_table` in systemd's
/// src/basic/cgroup-util.c, real and BPF pseudo-controllers alike): a cgroup name whose part
/// before the first `.` is one of them is escaped.
const CONTROLLERS: [&str; 13] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "io",
    "blkio",
    "memory",
    "devices",
    "pids",
    "bpf-firewall",
    "bpf-devices",
    "bpf-foreign",
    "bpf-socket-bind",
    "bpf-restrict-network-interfaces",
];

/// systemd's cgroup name escaping (`cg_escape`): a name that could clash with a cgroupfs file
/// (`tasks`, `cgroup.*`, `CONTROLLER.*`), or that starts with `_` or `.`, gets a `_` prefix.
/// `io.service` lives in `_io.service`. Each path component is escaped on its own.
pub fn cg_escape(name: &str) -> String {
    let controller = name
        .split_once('.')
        .is_some_and(|(head, _)| CONTROLLERS.contains(&head));
    let clash = name.is_empty()
        || name.starts_with('_')
        || name.starts_with('.')
        || name.starts_with("cgroup.")
        || matches!(name, "notify_on_release" | "release_agent" | "tasks")
        || controller;
    if clash {
        format!("_{name}")
    } else {
        name.to_string()
    }
}

/// The unit name a cgroup path component stands for (`cg_unescape`): one leading `_` goes.
pub fn cg_unescape(component: &str) -> &str {
    component.strip_prefix('_').unwrap_or(component)
}

/// The unit and uid the daemon's name of a user unit (`UNIT~UID`, daemon/users.rs) names, or
/// None for a system unit's name (no unit name has a `~`).
pub fn split_user_key(name: &str) -> Option<(&str, u32)> {
    let (unit, uid) = name.rsplit_once('~')?;
    Some((unit, uid.parse().ok()?))
}

/// Whether the daemon's name `name` is a user unit's ([`split_user_key`]).
pub fn is_user_unit(name: &str) -> bool {
    split_user_key(name).is_some()
}

/// The journal's fields for the unit the daemon calls `name`: `OBJECT_SYSTEMD_UNIT=` (a user
/// unit's user manager, `user@UID.service`), and for a user unit `OBJECT_SYSTEMD_USER_UNIT=`
/// and `OBJECT_UID=` (`journalctl --user-unit` matches the first of these in records of
/// root's).
pub fn journal_unit(name: &str) -> (std::borrow::Cow<'_, str>, Option<&str>, Option<u32>) {
    match split_user_key(name) {
        Some((unit, uid)) => (format!("user@{uid}.service").into(), Some(unit), Some(uid)),
        None => (name.into(), None, None),
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

/// systemd's `unit_name_escape` of a unit name prefix: bytes other than ASCII letters,
/// digits, `:`, `_` and `.` become `\xNN` (so `-` is `\x2d`, `\` is `\x5c`), and so does a
/// leading `.`; `/` becomes `-`.
fn escape_slice_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b":_.".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
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
        // unit_name_escape: the backslash of an escape in the prefix is escaped again.
        assert_eq!(
            default_slice("a\\x2db@x.service"),
            "system-a\\x5cx2db.slice"
        );
        assert_eq!(cg_escape("cgroup.x"), "_cgroup.x");
    }

    /// The cases of systemd's own test-cgroup-util (`TEST(escape)`), and the round trip.
    #[test]
    fn cg_escape_like_systemd() {
        for (name, escaped) in [
            ("foobar", "foobar"),
            (".foobar", "_.foobar"),
            ("foobar.service", "foobar.service"),
            ("cgroup.service", "_cgroup.service"),
            ("tasks", "_tasks"),
            ("cpu.service", "_cpu.service"),
            ("_foobar", "__foobar"),
            ("", "_"),
            ("_", "__"),
            (".", "_."),
        ] {
            assert_eq!(cg_escape(name), escaped, "{name:?}");
            assert_eq!(cg_unescape(&cg_escape(name)), name, "{name:?}");
        }
        for name in [
            "io.service",
            "memory.slice",
            "pids.x.y",
            "bpf-firewall.service",
        ] {
            assert_eq!(cg_escape(name), format!("_{name}"), "{name}");
        }
        for name in [
            "cpux.service",
            "iox.service",
            "notify_on_release.service",
            "a.io",
        ] {
            assert_eq!(cg_escape(name), name, "{name}");
        }
        assert_eq!(cg_escape("release_agent"), "_release_agent");
    }

    /// Every component of a unit's cgroup path is escaped, slices included (systemd's
    /// `TEST(slice_to_path)` for the valid names).
    #[test]
    fn cgroup_paths_are_escaped_per_component() {
        assert_eq!(
            expected_cgroup("system.slice", "io.service"),
            "/system.slice/_io.service"
        );
        assert_eq!(slice_path("foobar.slice"), "/foobar.slice");
        assert_eq!(
            slice_path("foobar-waldo.slice"),
            "/foobar.slice/foobar-waldo.slice"
        );
        assert_eq!(
            slice_path("a-b-c-d-e.slice"),
            "/a.slice/a-b.slice/a-b-c.slice/a-b-c-d.slice/a-b-c-d-e.slice"
        );
        assert_eq!(
            expected_cgroup("cpu-web.slice", "memory.service"),
            "/_cpu.slice/cpu-web.slice/_memory.service"
        );
        assert_eq!(
            expected_cgroup("system-io.slice", "io@a.service"),
            "/system.slice/system-io.slice/io@a.service"
        );
    }
}
