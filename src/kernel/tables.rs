//! Policy tables in the kernel: a compiled policy's cells, accept entries and header, written
//! in the order that makes it complete before anything is bound to it, and removed.

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use super::skel::types::{
    ua_accept, ua_cell, ua_from_key, ua_from_slots, ua_policy, ua_policy_table, ua_port_rule,
    ua_state_key,
};
use super::{bytes, regions, Kernel};
use crate::compile::{self, Tables};
use crate::policy::Mode;

/// What the daemon keeps of a policy's tables once the kernel has them: the accepting states
/// written for it, to remove them with the policy and to count them. The rest (cells, byte
/// classes, capability and network verdicts, about 1.5 KiB for a one-rule policy) is the
/// kernel's to hold.
pub struct Loaded {
    pub accept: Vec<u32>,
}

impl Loaded {
    pub fn of(tables: &Tables) -> Loaded {
        Loaded {
            accept: tables.accept.keys().copied().collect(),
        }
    }
}

impl Kernel {
    /// Writes `tables` as policy `id`: its cells into a free run of `cells`, its accept
    /// entries, then its header, so the policy is complete before anything can be bound to it.
    pub fn install_policy(&self, id: u32, tables: &Tables) -> Result<()> {
        let start = self.write_tables(id, tables)?;
        self.write_header(id, tables, start)
    }

    /// Writes the implicit protections' shared table (compile::protections) as policy slot 0,
    /// which no cgroup is bound to: the programs walk it besides each policy's own table.
    /// Called before any program is attached.
    pub fn install_protections(&self) -> Result<()> {
        let tables = compile::protections();
        let start = self.write_tables(compile::PROTECT_TABLE, tables)?;
        self.write_header_entry(compile::PROTECT_TABLE, &header(tables, start))
            .context("writing the implicit protections' table")
    }

    /// Writes `tables`' cells into a free run of `cells` (returned: where they start) and its
    /// accept entries, as policy `id`'s.
    fn write_tables(&self, id: u32, tables: &Tables) -> Result<u32> {
        let m = &self.skel.maps;
        let n = tables.cells.len().max(1) as u32;
        // Tables without a transition (refusing everything, or no path rule) share the run
        // the array starts with, which is never written: a zero cell matches no state.
        let shared = n <= regions::SHARED
            && tables.start < regions::SHARED
            && tables.cells.iter().all(|c| c.check == compile::CELL_FREE);
        if shared {
            self.regions.borrow_mut().release(id);
            return Ok(0);
        }
        let start = {
            let mut r = self.regions.borrow_mut();
            let Some(start) = r.alloc(id, n) else {
                bail!(
                    "the kernel's DFA cell array is full: the policy needs {n} cells, {} of {} are in use",
                    r.used(),
                    r.len()
                );
            };
            start
        };
        let mut keys = Vec::with_capacity(n as usize * 4);
        let mut values = Vec::with_capacity(n as usize * 8);
        for i in 0..n {
            let cell = tables
                .cells
                .get(i as usize)
                .copied()
                .unwrap_or(compile::Cell {
                    check: compile::CELL_FREE,
                    next: 0,
                });
            keys.extend_from_slice(&(start + i).to_ne_bytes());
            values.extend_from_slice(bytes(&ua_cell {
                check: cell.check,
                next: cell.next,
            }));
        }
        m.cells
            .update_batch(&keys, &values, n, MapFlags::ANY, MapFlags::ANY)
            .context("writing the cells map")?;
        for (&state, acc) in &tables.accept {
            let key = ua_state_key { policy: id, state };
            let val = ua_accept {
                deny: acc.deny,
                allow: acc.allow,
                audit: acc.audit,
                from: acc.from,
            };
            m.accept
                .update(bytes(&key), bytes(&val), MapFlags::ANY)
                .context("writing the accept map (is the policy too large?)")?;
        }
        Ok(start)
    }

    /// Writes policy `id`'s header, whose cells start at `cells`, after its `from=` patterns'
    /// capability and family tables (bpf/walk.h: slot_rule).
    fn write_header(&self, id: u32, tables: &Tables, cells: u32) -> Result<()> {
        self.write_from_slots(id, tables)?;
        self.note_peers(id, &tables.peers);
        self.write_header_entry(id, &header(tables, cells))?;
        self.note_kinds(id, tables.any_caps(), tables.any_net())
    }

    /// Removes policy `id` (nothing should be bound to it any more). Its header becomes one
    /// that refuses everything: a cgroup created below a rebound one while it was being rebound
    /// can still hold the id until the daemon's next sweep finds it, and it must not run
    /// unarmored meanwhile. Its cells are left as they are: the next policy given them
    /// overwrites every one.
    pub fn remove_policy(&self, id: u32, loaded: &Loaded) {
        let m = &self.skel.maps;
        let refusing = compile::refuse_all(&crate::policy::Policy::default());
        let _ = self.write_header_entry(id, &header(&refusing, 0));
        let _ = self.write_from_slots(id, &refusing);
        self.regions.borrow_mut().release(id);
        self.forget_peers(id);
        // Still counted among policies with cap and net rules: its refusing header has both,
        // and a cgroup left on it must be refused by those hooks too until the sweep frees it.
        let _ = self.note_kinds(id, true, true);
        for &state in &loaded.accept {
            let _ = m.accept.delete(bytes(&ua_state_key { policy: id, state }));
        }
    }

    /// Writes (or, for patterns it no longer has, removes) policy `id`'s `from_slots` entries.
    fn write_from_slots(&self, id: u32, tables: &Tables) -> Result<()> {
        let m = &self.skel.maps;
        for i in 0..compile::FROM_MAX {
            let key = ua_from_key {
                policy: id,
                pattern: i as u32,
            };
            match tables.from_slots.get(i) {
                Some(t) => {
                    let val = ua_from_slots {
                        cap_rule: t.caps.rule,
                        cap_audit: t.caps.audit,
                        net_rule: t.net_rule,
                        net_audit: t.net_audit,
                    };
                    m.from_slots
                        .update(bytes(&key), bytes(&val), MapFlags::ANY)
                        .context("writing the from_slots map")?;
                }
                None => {
                    let _ = m.from_slots.delete(bytes(&key));
                }
            }
        }
        Ok(())
    }

    /// Policy `id`, removed earlier, has no cgroup bound to it any more (the daemon's sweep):
    /// it stops counting among the policies the cap and net hooks look for.
    pub fn policy_freed(&self, id: u32) {
        let _ = self.note_kinds(id, false, false);
    }

    /// Cells of `cells` in use, and how many there are.
    pub fn cells_used(&self) -> (u32, u32) {
        let r = self.regions.borrow();
        (r.used(), r.len())
    }

    /// Counts policy `id` among those with `cap` rules and those with net, connect or bind
    /// rules (or not), and tells the programs how many there are: while none has any, the
    /// capable() and socket hooks return at once.
    fn note_kinds(&self, id: u32, caps: bool, net: bool) -> Result<()> {
        let note = |set: &std::cell::RefCell<std::collections::HashSet<u32>>, has: bool| {
            let mut ids = set.borrow_mut();
            if has {
                ids.insert(id)
            } else {
                ids.remove(&id)
            }
        };
        let changed = note(&self.cap_policies, caps) | note(&self.net_policies, net);
        if changed {
            self.write_config()?;
        }
        Ok(())
    }
}

/// The `policies` entry of `tables`, whose cells start at `cells`.
fn header(tables: &Tables, cells: u32) -> ua_policy_table {
    ua_policy_table {
        header: ua_policy {
            start: tables.start,
            mode: match tables.mode {
                Mode::Audit => 1,
                _ => 0,
            },
            classes: tables.classes,
            allowlist: tables.allowlist,
            from_held: tables.from_held,
            protect: tables.protect,
            cells,
            from_allow: tables.from_allow,
            from_tag: tables.from_tag,
            ..Default::default()
        },
        byte_class: tables.byte_class,
        cap_rule: tables.caps.rule,
        cap_audit: tables.caps.audit,
        net_rule: tables.net.family_rule,
        net_audit: tables.net.family_audit,
        nports: tables.net.ports.len().min(compile::PORT_RULES) as u32,
        port_allowlist: u32::from(tables.net.port_allowlist),
        // Byte k for port-rule kind k (bpf/net.h shifts by 8 * kind).
        port_from_allow: u32::from_le_bytes(tables.net.port_from_allow),
        ports: std::array::from_fn(|i| match tables.net.ports.get(i) {
            Some(e) => port_rule(e),
            None => Default::default(),
        }),
        ..Default::default()
    }
}

/// A port rule as bpf/net.h reads it: the address and mask as four words in network order.
fn port_rule(e: &compile::PortEntry) -> ua_port_rule {
    let words = |b: &[u8; 16]| {
        std::array::from_fn(|i| {
            u32::from_ne_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
        })
    };
    ua_port_rule {
        rule: e.rule,
        first: e.first,
        last: e.last,
        action: match e.action {
            crate::policy::Action::Deny => 1,
            crate::policy::Action::Allow => 2,
            crate::policy::Action::Audit => 3,
        },
        kind: e.kind,
        from: e.from,
        addr: words(&e.addr),
        mask: words(&e.mask),
        ..Default::default()
    }
}
