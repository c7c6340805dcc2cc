//! The implicit protections' path patterns (unit files, kernel settings, the bus sockets...),
//! compiled once into a table every policy shares. The kernel keeps it as policy slot 0 (which
//! no unit is ever bound to) and walks it, besides the unit's own table, for the two classes
//! protections have paths in: writes and unix connects. A policy's own table then holds only
//! its own rules: it compiles in a fraction of the time and takes a fraction of the cells that
//! a copy of the protections in every policy did, which is what lets a thousand distinct
//! policies fit in the kernel's cell array.
//!
//! An accepting state of this table records, per class, a mask of the protections whose
//! patterns match there (bit `p as u32`; 0 for none), not a rule: each policy says which
//! protections are in force for it (`Tables::protect`, lifted with `ArmorExempt=`), and a path
//! is refused by the first protection in both.

use std::sync::OnceLock;

use super::{dfa, CapTable, CompileError, NetTable, Tables, RULE_NONE, UNIX_CLASS};
use crate::policy::net::SocketPattern;
use crate::policy::{Action, Mode, PathPattern, Policy, Protection};

/// The policy slot the kernel keeps this table in (bpf/walk.h: UA_PROTECT_TABLE): 0, which
/// names no policy in a binding.
pub const PROTECT_TABLE: u32 = 0;

/// Bits of a state of this table in the kernel's packed result of a path walk
/// (bpf/path.h: BUILT_PSTATE): its states' bases must stay below `1 << PROTECT_STATE_BITS`.
pub const PROTECT_STATE_BITS: u32 = 17;

/// The shared table of the implicit protections' path patterns.
pub fn protections() -> &'static Tables {
    static TABLE: OnceLock<Tables> = OnceLock::new();
    // The patterns are constants of this program: the host test `shared_table_builds` proves
    // they compile, so this cannot fail at run time.
    TABLE.get_or_init(|| build().expect("the implicit protections' patterns compile"))
}

fn build() -> Result<Tables, CompileError> {
    let mut patterns = Vec::new();
    let mut owner = Vec::new();
    let mut classes = 0u8;
    let mut protect = 0u32;
    for p in Protection::ALL {
        protect |= 1 << p as u32;
        let writes = p
            .write_paths()
            .iter()
            .filter_map(|w| PathPattern::parse(w).ok())
            .map(|w| (w.to_regex(), 1));
        let sockets = p
            .unix_paths()
            .iter()
            .filter_map(|u| SocketPattern::parse(&format!("unix:{u}")).ok())
            .map(|u| (u.to_regex(), UNIX_CLASS));
        for (regex, ci) in writes.chain(sockets) {
            patterns.push(regex);
            owner.push((p as u32, ci, Action::Deny));
            classes |= 1 << ci;
        }
    }
    let built = dfa::build(&patterns, &owner, true, |acc, p, ci, _| {
        if acc.deny[ci] == RULE_NONE {
            acc.deny[ci] = 0;
        }
        acc.deny[ci] |= 1 << p;
    })?;
    // The largest base names a missing table in the kernel (bpf/walk.h: UA_PSTATE_MISSING).
    if built.cells.len() >= (1 << PROTECT_STATE_BITS) - 1 {
        return Err(CompileError::TooComplex(format!(
            "the implicit protections take {} cells, more than a path walk's result can name",
            built.cells.len()
        )));
    }
    let accept = built
        .accept
        .into_iter()
        .map(|(state, mut acc)| {
            for d in &mut acc.deny {
                if *d == RULE_NONE {
                    *d = 0;
                }
            }
            (state, acc)
        })
        .collect();
    let none = Policy::default();
    Ok(Tables {
        mode: Mode::Enforce,
        classes,
        allowlist: 0,
        protect,
        start: built.start,
        from_tag: 0,
        from_allow: [0; super::PATH_CLASSES],
        from_held: 0,
        from_slots: Vec::new(),
        byte_class: built.byte_class,
        cells: built.cells,
        accept,
        caps: CapTable::of(&none),
        net: NetTable::of(&none).map_err(CompileError::TooComplex)?,
        peers: Default::default(),
        groups: Vec::new(),
    })
}

/// The first protection of `protect` (a policy's mask) that refuses an operation of DFA class
/// `ci` on `path`.
pub(super) fn protection_at(protect: u32, ci: usize, path: &[u8]) -> Option<u32> {
    if protect == 0 || (ci != 1 && ci != UNIX_CLASS) {
        return None;
    }
    let t = protections();
    if t.classes & (1 << ci) == 0 {
        return None;
    }
    let m = t.accept.get(&t.walk_from(t.start, path))?.deny[ci] & protect;
    (m != 0).then(|| m.trailing_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_table_builds() {
        let t = protections();
        assert!(t.cells.len() < 1 << PROTECT_STATE_BITS);
        assert!(!t.accept.is_empty());
        // Masks only: never a rule index, never "no rule".
        for acc in t.accept.values() {
            for d in acc.deny {
                assert!(d != RULE_NONE && d < 1 << Protection::ALL.len(), "{d:#x}");
            }
        }
    }

    #[test]
    fn masks_name_each_protection_that_matches() {
        let unit = Protection::UnitFiles as u32;
        assert_eq!(
            protection_at(u32::MAX, 1, b"/etc/systemd/system/app.service.d/x.conf"),
            Some(unit)
        );
        // Lifted for this policy: nothing else refuses that path.
        assert_eq!(
            protection_at(!(1 << unit), 1, b"/etc/systemd/system/app.service.d/x.conf"),
            None
        );
        // Reads are never the shared table's business.
        assert_eq!(
            protection_at(u32::MAX, 0, b"/etc/systemd/system/a.service"),
            None
        );
        assert_eq!(protection_at(u32::MAX, 1, b"/srv/data"), None);
    }
}
