//! Pinning: the daemon's links and maps under /sys/fs/bpf/unitarmor, so that enforcement
//! outlives the daemon and passes from one daemon to the next without a gap; and removing them
//! (`unitarmor disarm`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{pending, Kernel};

/// Where programs (as links) and maps are pinned.
pub const PIN_DIR: &str = "/sys/fs/bpf/unitarmor";

impl Kernel {
    /// Pins every attached link and every map under [`PIN_DIR`], replacing what an earlier
    /// daemon pinned. The new links are already attached, so replacing a pin never leaves a
    /// moment without enforcement: the old link detaches only when its pin goes.
    pub fn pin(&mut self) -> Result<()> {
        // Cgroups the earlier daemon left waiting (bpf/pending.h): their tasks may be stopped,
        // and this daemon continues them. Read last thing before its maps are unpinned (its
        // programs run, and may bind more, until then).
        self.released
            .borrow_mut()
            .extend(pending::waiting_in_pinned(
                &Path::new(PIN_DIR).join("maps/bound"),
            ));
        let links_dir = Path::new(PIN_DIR).join("links");
        let maps_dir = Path::new(PIN_DIR).join("maps");
        for dir in [&links_dir, &maps_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        for (name, link) in &mut self.links {
            let path = links_dir.join(name.as_str());
            remove_pin(&path)?;
            link.pin(&path)
                .with_context(|| format!("pinning {}", path.display()))?;
        }
        // Links an earlier daemon pinned that this one has not (a program this kernel or
        // version does not attach): they would keep running with the earlier daemon's maps.
        for entry in std::fs::read_dir(&links_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            if !self
                .links
                .iter()
                .any(|(n, _)| entry.file_name() == n.as_str())
            {
                remove_pin(&entry.path())?;
            }
        }
        let m = &mut self.skel.maps;
        let mut pinned = Vec::new();
        for (name, map) in [
            ("expected", &mut m.expected),
            ("bound", &mut m.bound),
            ("policies", &mut m.policies),
            ("cells", &mut m.cells),
            ("accept", &mut m.accept),
            ("counters", &mut m.counters),
            ("tree_size", &mut m.tree_size),
            ("sub_total", &mut m.sub_total),
            ("events", &mut m.events),
            ("settings", &mut m.settings),
            ("task_marks", &mut m.task_marks),
        ] {
            let path = maps_dir.join(name);
            remove_pin(&path)?;
            map.pin(&path)
                .with_context(|| format!("pinning {}", path.display()))?;
            pinned.push(name);
        }
        // Maps an earlier version pinned and this one no longer has.
        for entry in std::fs::read_dir(&maps_dir).into_iter().flatten().flatten() {
            if !pinned.iter().any(|n| entry.file_name() == **n) {
                remove_pin(&entry.path())?;
            }
        }
        Ok(())
    }
}

fn remove_pin(path: &PathBuf) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing the old pin {}", path.display())),
    }
}

/// Removes every pin: once no daemon holds the links, enforcement stops.
pub fn disarm() -> Result<bool> {
    match std::fs::remove_dir_all(PIN_DIR) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {PIN_DIR}")),
    }
}

/// Waits until no unitarmor LSM program is loaded any more, at most `timeout`; returns whether
/// none is. Once the pins are gone and no daemon holds them, the kernel detaches and frees the
/// programs, on newer kernels from a work queue that waits out an RCU grace period: `disarm`
/// returns once enforcement has really stopped, not a moment before.
pub fn wait_unloaded(timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let loaded = libbpf_rs::query::ProgInfoIter::default().any(|p| {
            p.ty == libbpf_rs::ProgramType::Lsm && p.name.as_encoded_bytes().starts_with(b"ua_")
        });
        if !loaded {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Whether an earlier daemon left pinned programs behind.
pub fn pinned() -> bool {
    Path::new(PIN_DIR).join("links").is_dir()
}
