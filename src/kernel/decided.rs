//! The decision cache's side of the daemon (bpf/decided.h): attaching the programs that count
//! renames and unlinks, counting policy header writes around each write, and telling whether
//! the kernel still remembers decisions.

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use super::skel::types::ua_policy_table;
use super::{bytes, Kernel};

impl Kernel {
    /// Attaches the programs that count name changes, then lets the LSM programs remember
    /// decisions (bpf/decided.h), on x86-64 (the programs read the counts in an order only its
    /// memory model keeps). Without all six, nothing is remembered: the cache is only ever a
    /// shortcut to the decision the programs would make. Called after the LSM programs are
    /// attached, so that their links come last and `pin` replaces an earlier daemon's
    /// counters after its `file_open`: never is a cache left without its counters.
    pub(super) fn attach_name_counters(&mut self) -> Result<()> {
        if self.missing_hooks.contains(&"d_move") || !cfg!(target_arch = "x86_64") {
            return Ok(());
        }
        let p = &self.skel.progs;
        let mut links = Vec::new();
        // Exits before entries: a call whose entry is counted always has its exit attached.
        for (name, prog) in [
            ("d_move", &p.ua_moved),
            ("d_exchange", &p.ua_exchanged),
            ("d_delete", &p.ua_deleted),
            ("d_move_entry", &p.ua_moving),
            ("d_exchange_entry", &p.ua_exchanging),
            ("d_delete_entry", &p.ua_deleting),
        ] {
            match prog.attach() {
                Ok(link) => links.push((name.to_string(), link)),
                Err(e) => {
                    tracing::warn!("cannot trace {name} ({e}); opens are decided without a cache");
                    return Ok(());
                }
            }
        }
        self.links.extend(links);
        self.decided_on = true;
        self.write_config()
    }

    /// Whether opens' decisions are being remembered: the counting programs are attached and
    /// no name change was left counted as begun and never ended (a skipped program, a task
    /// note that could not be made: the cache is then off for good, bpf/decided.h). A change
    /// under way when this looks also reads as off: callers ask twice, a second apart.
    pub fn decision_cache_on(&self) -> bool {
        let read = |k: u32| -> Option<u64> {
            let v = self
                .skel
                .maps
                .epochs
                .lookup(bytes(&k), MapFlags::ANY)
                .ok()??;
            Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?))
        };
        self.decided_on && read(0).is_some() && read(0) == read(1)
    }

    /// Whether the daemon turned the decision cache on (the counting programs attached).
    pub fn decision_cache_enabled(&self) -> bool {
        self.decided_on
    }

    /// Writes policy `id`'s header (`policies` entry), counting the write as begun before and
    /// as ended after it: decisions remembered under the header before are forgotten, and
    /// none is remembered or looked up while it is written (bpf/decided.h). The count ends
    /// even if the write failed (a count too many only forgets decisions).
    pub(super) fn write_header_entry(&self, id: u32, table: &ua_policy_table) -> Result<()> {
        let n = self.tables_epoch.get() + 1;
        self.tables_epoch.set(n);
        let epochs = &self.skel.maps.epochs;
        epochs
            .update(bytes(&3u32), bytes(&n), MapFlags::ANY)
            .context("writing the epochs map")?;
        let written = self
            .skel
            .maps
            .policies
            .update(bytes(&id), bytes(table), MapFlags::ANY)
            .context("writing the policies map");
        epochs
            .update(bytes(&2u32), bytes(&n), MapFlags::ANY)
            .context("writing the epochs map")?;
        written
    }
}
