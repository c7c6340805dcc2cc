//! The compiler: a [`Policy`] becomes the tables the kernel programs read.
//!
//! Every path pattern of every read/write/exec rule becomes one pattern of a single
//! multi-pattern DFA (regex-automata; minimized here, see `minimize.rs`; a large policy's
//! patterns one per class and action instead, see `groups.rs`). Its transitions are
//! kept per byte class and packed into an array of cells (`pack.rs`), where each state is
//! known by its base offset (0 is the dead state), and each state that ends a match records,
//! per class, the first deny, allow and audit rule that matched. The kernel then
//! walks the path byte by byte: the cost of a decision grows with the length of the path, not
//! with the number of rules, and most paths reach the dead state within a few bytes.
//!
//! [`Tables::decide`] walks the same tables in Rust the way bpf/unitarmor.bpf.c does, so the
//! semantics are tested on the host. Pure: no kernel, no D-Bus.

mod arrays;
mod caps;
mod dfa;
mod from;
mod groups;
mod minimize;
mod net;
mod pack;
mod shared;

pub use caps::{CapTable, CAP_SLOTS};
pub use from::{FromSlots, FROM_ANY, FROM_MAX, FROM_QUERY};
pub use groups::{Group, RuleFinder, GROUP_ABOVE};
pub use net::{NetTable, PortEntry, NET_SLOTS, PORT_RULES};
pub use shared::{protections, PROTECT_STATE_BITS, PROTECT_TABLE};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::policy::protect::IMPLICIT_UNIX_ALLOW;
use crate::policy::{Action, Class, Mode, Policy, Protection, Rule};

/// Number of classes the DFA decides (read, write, exec, unix connect), as in bpf/unitarmor.h.
pub const PATH_CLASSES: usize = 4;
/// The DFA class of `connect unix:` rules (bpf/unitarmor.h: UA_CLASS_UNIX).
pub const UNIX_CLASS: usize = 3;
/// "No rule" in an [`Accept`] slot.
pub const RULE_NONE: u32 = u32::MAX;
/// The rule index an event carries when a path was denied for matching no allow rule.
pub const RULE_NOT_ALLOWED: u32 = u32::MAX - 1;
/// The rule index of implicit allow entries (never reported: allows are silent).
pub const RULE_IMPLICIT: u32 = u32::MAX - 2;
/// Denied because the object's path could not be built (bpf/unitarmor.h).
pub const RULE_UNBUILDABLE: u32 = u32::MAX - 4;
/// Denied because a rename or link would change which rules cover the object.
pub const RULE_RECOVER: u32 = u32::MAX - 5;
/// Denied because a kernel table cannot hold what the operation would create: a mkdir beyond
/// the unit's sub-cgroup budget (bpf/unitarmor.h: UA_RULE_FULL).
pub const RULE_FULL: u32 = u32::MAX - 6;
/// Denied: source routing would take a connection past the connect rules (bpf/unitarmor.h:
/// UA_RULE_SOURCE_ROUTE).
pub const RULE_SOURCE_ROUTE: u32 = u32::MAX - 7;
/// Denied: a program held to `from=` allow-lists would execute a program they do not name
/// (bpf/unitarmor.h: UA_RULE_FROM_EXEC).
pub const RULE_FROM_EXEC: u32 = u32::MAX - 8;
/// Denied by implicit protection `p`: `RULE_PROTECT + p as u32`.
pub const RULE_PROTECT: u32 = 0xffff_ff00;
/// The rule index of implicit allow entries that lift a protection's refusal of a unix socket
/// as an explicit `allow connect unix:` does, without making the class an allow-list: a user
/// unit's manager's notify socket (below [`RULE_PROTECT`], which is what lifts in the kernel:
/// bpf/path.h).
pub const RULE_LIFT: u32 = RULE_PROTECT - 1;

/// The protection a rule index stands for, if it is one of [`RULE_PROTECT`]'s.
pub fn protection_of(rule: u32) -> Option<Protection> {
    let n = rule.checked_sub(RULE_PROTECT)?;
    Protection::ALL.into_iter().find(|p| *p as u32 == n)
}
/// Most path patterns one policy may have (its own; the implicit protections' come on top).
/// Checked before compiling, so that a policy far beyond what the kernel tables hold is
/// refused at once instead of after seconds of work.
pub const MAX_PATTERNS: usize = 32_768;
/// Most bytes of path patterns one policy may have (as regular expressions): with
/// [`MAX_PATTERNS`], a bound on the time a policy can take to compile (about a second for a
/// mebibyte) before it is refused, so no unit can hold up the daemon.
pub const MAX_PATTERN_BYTES: usize = 1 << 20;
/// Most DFA states one policy may have; the kernel maps are sized for policies of this order.
pub const MAX_STATES: usize = 1 << 16;
/// Most transitions one policy may have.
pub const MAX_TRANSITIONS: usize = 1 << 18;
/// Most cells one policy's packed transitions may take (the kernel's array holds twice as
/// many, bpf/unitarmor.h: UA_CELLS).
pub const MAX_CELLS: usize = 1 << 20;
/// The `check` of a cell no state owns.
pub const CELL_FREE: u32 = u32::MAX;

/// One cell of the packed transitions: owned by the state whose base is `check`, it leads to
/// the state whose base is `next` (bpf/unitarmor.h: struct ua_cell).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub check: u32,
    pub next: u32,
}
/// What a path that ends in a state matches, per path class: rule indexes into
/// [`Policy::rules`] or [`RULE_NONE`]; and for an executable's path walked after
/// [`FROM_QUERY`], the `from=` patterns it matches (bit per pattern, see `from.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Accept {
    pub deny: [u32; PATH_CLASSES],
    pub allow: [u32; PATH_CLASSES],
    pub audit: [u32; PATH_CLASSES],
    pub from: u32,
}

impl Default for Accept {
    fn default() -> Self {
        Accept {
            deny: [RULE_NONE; PATH_CLASSES],
            allow: [RULE_NONE; PATH_CLASSES],
            audit: [RULE_NONE; PATH_CLASSES],
            from: 0,
        }
    }
}

/// The kernel tables of one policy. Serializable, for a compile in a process of its own
/// (the daemon's big policies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tables {
    pub mode: Mode,
    /// Bit per path class that has any rule.
    pub classes: u8,
    /// Bit per path class that is an allow-list.
    pub allowlist: u8,
    /// Bit per implicit protection in force (`1 << Protection as u32`).
    pub protect: u32,
    /// The start state's base (states are known by their base in `cells`; 0 is dead).
    pub start: u32,
    /// Nonzero if the policy has `from=` rules: then every walk starts with one byte before
    /// the path, the process's mask of matching `from=` patterns (from.rs), and this tags
    /// the patterns (a hash of them, so that a mask the kernel cached for a task under other
    /// patterns is never used).
    pub from_tag: u64,
    /// Per path class, the `from=` patterns (bit per pattern) that have allow rules in it:
    /// the class is an allow-list for the processes those patterns name.
    pub from_allow: [u8; PATH_CLASSES],
    /// The `from=` patterns with allow rules of any class: their processes are held to them,
    /// and may execute only programs the same patterns name.
    pub from_held: u8,
    /// Per `from=` pattern, its processes' capability and family verdicts (from.rs).
    pub from_slots: Vec<FromSlots>,
    #[serde(with = "arrays")]
    pub byte_class: [u8; 256],
    /// The packed transitions: from the state of base `b` on byte class `c`, cell `b + c`
    /// if its `check` is `b`, else the dead state. Long enough that no state's row runs past
    /// its end. (The daemon empties it once the kernel has the cells.)
    pub cells: Vec<Cell>,
    /// State base -> what a path ending there matches.
    pub accept: HashMap<u32, Accept>,
    /// What each capability check is (caps.rs).
    pub caps: CapTable,
    /// Socket families and port rules (net.rs).
    pub net: NetTable,
    /// Other units this one's processes may signal ([`PEER_SIGNAL`]) or trace
    /// ([`PEER_PTRACE`]): `allow signal UNIT...`, `allow ptrace UNIT...`, by unit name.
    pub peers: std::collections::BTreeMap<String, u32>,
    /// A policy of more than [`GROUP_ABOVE`] path patterns: its path rules as the kernel
    /// knows them, one group per class and action (groups.rs). Empty for smaller policies.
    pub groups: Vec<Group>,
}

/// A verdict of [`Tables::decide`], as the kernel reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Denied (reported as "would deny" and allowed under `ArmorMode=audit`).
    Deny(u32),
    /// An audit rule matched: reported, allowed.
    Audit(u32),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CompileError {
    #[error("the policy is too complex for the kernel tables: {0}")]
    TooComplex(String),
}

/// `peers` bit: the unit may signal the peer's processes (and set their priorities).
pub const PEER_SIGNAL: u32 = 1;
/// `peers` bit: the unit may trace the peer's processes (ptrace_access_check).
pub const PEER_PTRACE: u32 = 2;
/// Where a `peers` value holds the `from=` patterns (bit per pattern, [`from`]) whose
/// processes may signal the peer: `allow signal UNIT from=PATTERN`. The processes of other
/// executables may not, unless [`PEER_SIGNAL`] is set too.
pub const PEER_SIGNAL_FROM_SHIFT: u32 = 8;
/// The same for `allow ptrace UNIT from=PATTERN`.
pub const PEER_PTRACE_FROM_SHIFT: u32 = 16;

/// The units `allow signal` and `allow ptrace` rules name, with what each allows: for every
/// process of the unit, or with `from=` for those of its executables.
fn peers_of(policy: &Policy, froms: &from::Froms) -> std::collections::BTreeMap<String, u32> {
    let mut peers = std::collections::BTreeMap::new();
    for r in policy.rules.iter().filter(|r| r.action == Action::Allow) {
        let (bit, shift) = match r.class {
            Class::Signal => (PEER_SIGNAL, PEER_SIGNAL_FROM_SHIFT),
            Class::Ptrace => (PEER_PTRACE, PEER_PTRACE_FROM_SHIFT),
            _ => continue,
        };
        let bits = match froms.bit(r) {
            Some(b) => 1 << (shift + b),
            None => bit,
        };
        if let crate::policy::Target::Units(units) = &r.target {
            for u in units {
                *peers.entry(u.clone()).or_insert(0) |= bits;
            }
        }
    }
    peers
}

/// The bit of a rule's `from=` pattern among `policy`'s ([`from`]: the bits of a process's
/// mask, [`Tables::exe_mask`]), if it has one.
pub fn from_bits(policy: &Policy) -> impl Fn(&Rule) -> Option<u32> {
    let froms = from::Froms::of(policy).ok();
    move |r| froms.as_ref()?.bit(r)
}

/// The DFA class a rule is decided in, if the kernel decides it.
fn rule_class(rule: &Rule) -> Option<usize> {
    match rule.class {
        Class::Connect if rule.is_unix() => Some(UNIX_CLASS),
        c => class_index(c),
    }
}

fn class_index(c: Class) -> Option<usize> {
    match c {
        Class::Read => Some(0),
        Class::Write => Some(1),
        Class::Exec => Some(2),
        _ => None,
    }
}

/// What a write allow-list always allows, because systemd itself writes it while it starts the
/// service inside the unit's cgroup (systemd 255+ does this from systemd-executor): the null
/// and console devices.
pub const IMPLICIT_WRITE_ALLOW: [&str; 2] = ["/dev/null", "/dev/console"];

/// Compiles `policy` as it stands on its own (for `check` and host tests).
pub fn compile(policy: &Policy) -> Result<Tables, CompileError> {
    compile_for(policy, None)
}

/// The uid of the user manager whose tree holds `cgroup`
/// (`/user.slice/user-UID.slice/user@UID.service/...`), if any.
fn user_manager_uid(cgroup: &str) -> Option<u32> {
    let rest = cgroup.strip_prefix("/user.slice/user-")?;
    let (uid, rest) = rest.split_once(".slice/user@")?;
    let uid: u32 = uid.parse().ok()?;
    let manager = rest.split('/').next()?;
    (manager == format!("{uid}.service")).then_some(uid)
}

/// Compiles `policy` for a unit whose cgroup is `cgroup` (`/system.slice/app.service`, or a
/// pattern for a slice's or template's units). A write allow-list then also allows that
/// cgroup's `cgroup.procs`, which systemd writes to put the service's processes there; no
/// other cgroup's.
pub fn compile_for(policy: &Policy, cgroup: Option<&str>) -> Result<Tables, CompileError> {
    compile_impl(policy, cgroup, true, true)
}

/// [`compile_for`]; without `minimize`, the DFA as regex-automata built it, and without
/// `group`, one pattern per rule however large the policy (host tests compare them).
fn compile_impl(
    policy: &Policy,
    cgroup: Option<&str>,
    minimize: bool,
    group: bool,
) -> Result<Tables, CompileError> {
    let mut patterns = Vec::new();
    let mut owner = Vec::new(); // pattern id -> (rule index, class index, action)
    let mut classes = 0u8;
    let mut allowlist = 0u8;
    let froms = from::Froms::of(policy)?;
    let mut from_allow = [0u8; PATH_CLASSES];
    for (i, rule) in policy.rules.iter().enumerate() {
        if matches!(rule.class, Class::Cap | Class::Net | Class::Bind)
            || (rule.class == Class::Connect && !rule.is_unix())
        {
            // Decided per capability (caps.rs), family or port (net.rs), not by the DFA; with
            // from=, by its pattern's tables (from.rs).
            continue;
        }
        let Some(ci) = rule_class(rule) else {
            continue; // every other class was taken above
        };
        classes |= 1 << ci;
        let bit = froms.bit(rule);
        if rule.action == Action::Allow {
            // An allow rule with from= makes its class an allow-list for the processes
            // it names only.
            match bit {
                Some(b) => from_allow[ci] |= 1 << b,
                None => allowlist |= 1 << ci,
            }
        }
        let regexes = rule.paths().iter().map(|p| p.to_regex());
        for re in regexes.chain(rule.unix_regexes()) {
            patterns.push(froms.prefixed(&re, bit));
            owner.push((i as u32, ci, rule.action));
        }
    }
    // An allow rule that did not parse keeps its class an allow-list (the error is reported).
    for c in &policy.broken_allow {
        let ci = match c {
            Class::Connect => Some(UNIX_CLASS),
            c => class_index(*c),
        };
        if let Some(ci) = ci {
            classes |= 1 << ci;
            allowlist |= 1 << ci;
        }
    }
    // The policy's own patterns count against the cap; the implicit ones below do not, so
    // that a protection added in a later version never takes room from a policy.
    let own_patterns = patterns.len();
    let own_bytes: usize = patterns.iter().map(String::len).sum();
    // Implicit protections: the path ones are one table shared by every policy (shared.rs),
    // the others are checked by identity. A policy says which are in force, and the classes
    // they need are decided for every armored unit.
    let mut protect = 0u32;
    for p in Protection::ALL {
        if policy.is_exempt(p) {
            continue;
        }
        protect |= 1 << p as u32;
        if !p.write_paths().is_empty() {
            classes |= 1 << 1;
        }
        if !p.unix_paths().is_empty() {
            classes |= 1 << UNIX_CLASS;
        }
    }
    let mut implicit = |path: &str, ci: usize, rule: u32| {
        if let Ok(pattern) = crate::policy::PathPattern::parse(path) {
            patterns.push(froms.prefixed(&pattern.to_regex(), None));
            owner.push((rule, ci, Action::Allow));
        }
    };
    if classes & (1 << UNIX_CLASS) != 0 {
        IMPLICIT_UNIX_ALLOW
            .iter()
            .for_each(|p| implicit(p, UNIX_CLASS, RULE_IMPLICIT));
        // A user unit's readiness notification goes to its user manager's socket, in the
        // user's run-time directory that the bus protection closes otherwise.
        if let Some(uid) = cgroup.and_then(user_manager_uid) {
            implicit(
                &format!("/run/user/{uid}/systemd/notify"),
                UNIX_CLASS,
                RULE_LIFT,
            );
        }
    }
    if (allowlist & (1 << 1)) | from_allow[1] != 0 {
        IMPLICIT_WRITE_ALLOW
            .iter()
            .for_each(|p| implicit(p, 1, RULE_IMPLICIT));
        if let Some(cg) = cgroup {
            implicit(
                &format!("/sys/fs/cgroup{cg}/cgroup.procs"),
                1,
                RULE_IMPLICIT,
            );
        }
    }
    // Grouping keys on class and action only, so a policy with from= keeps one pattern per
    // rule (the rule finder would not know which from= a group's rules carry).
    froms.queries(&mut patterns, &mut owner);
    let groups = if group
        && froms.is_empty()
        && own_patterns > GROUP_ABOVE
        && own_patterns <= MAX_PATTERNS
        && own_bytes <= MAX_PATTERN_BYTES
    {
        let (p, o, g) = groups::group(patterns, owner, own_patterns);
        patterns = p;
        owner = o;
        g
    } else {
        Vec::new()
    };
    if own_bytes > MAX_PATTERN_BYTES {
        return Err(CompileError::TooComplex(format!(
            "{own_bytes} bytes of path patterns, more than the {MAX_PATTERN_BYTES} one policy may have"
        )));
    }
    if own_patterns > MAX_PATTERNS {
        return Err(CompileError::TooComplex(format!(
            "{own_patterns} path patterns, more than the {MAX_PATTERNS} one policy may have"
        )));
    }
    let mut tables = Tables {
        mode: policy.mode,
        classes,
        allowlist,
        protect,
        start: 0,
        from_tag: froms.tag(),
        from_allow,
        from_held: froms.held(policy),
        from_slots: froms.slots(policy),
        byte_class: [0; 256],
        cells: Vec::new(),
        accept: HashMap::new(),
        caps: CapTable::of(policy),
        net: NetTable::of(policy).map_err(CompileError::TooComplex)?,
        peers: peers_of(policy, &froms),
        groups,
    };
    if patterns.is_empty() {
        return Ok(tables);
    }
    let built = dfa::build(&patterns, &owner, minimize, |acc, rule, ci, action| {
        if ci == from::FROM_CLASS {
            acc.from |= 1 << rule;
            return;
        }
        let slot = match action {
            Action::Deny => &mut acc.deny[ci],
            Action::Allow => &mut acc.allow[ci],
            Action::Audit => &mut acc.audit[ci],
        };
        *slot = (*slot).min(rule);
    })?;
    tables.start = built.start;
    tables.byte_class = built.byte_class;
    tables.cells = built.cells;
    tables.accept = built.accept;
    Ok(tables)
}

/// The tables of a unit whose policy did not compile and that has no last good one: every
/// class is an allow-list with nothing allowed, and every protection is in force. Fail closed.
pub fn refuse_all(policy: &Policy) -> Tables {
    let all = (1u8 << PATH_CLASSES) - 1;
    Tables {
        mode: policy.mode,
        classes: all,
        allowlist: all,
        protect: Protection::ALL.iter().fold(0, |m, p| m | 1 << *p as u32),
        start: 1,
        from_tag: 0,
        from_allow: [0; PATH_CLASSES],
        from_held: 0,
        from_slots: Vec::new(),
        byte_class: [0; 256],
        // No transitions, but a row for the start state to fail in.
        cells: vec![
            Cell {
                check: CELL_FREE,
                next: 0
            };
            2
        ],
        accept: HashMap::new(),
        caps: CapTable::refuse_all(),
        net: NetTable::refuse_all(),
        peers: Default::default(),
        groups: Vec::new(),
    }
}

fn too_complex() -> CompileError {
    CompileError::TooComplex(format!(
        "more than {MAX_STATES} states, {MAX_TRANSITIONS} transitions or {MAX_CELLS} cells"
    ))
}

impl Tables {
    /// Decides an operation of `class` on `path` exactly as the kernel does: the policy's own
    /// table, then the implicit protections' shared one ([`protections`]).
    /// A process whose executable matches none of the policy's `from=` patterns; see
    /// [`Tables::decide_from`] for others.
    pub fn decide(&self, class: Class, path: &[u8]) -> Verdict {
        self.decide_from(class, path, 0)
    }

    /// [`Tables::decide`] for a process whose executable matches the `from=` patterns of
    /// `mask` (as [`Tables::exe_mask`] finds it).
    pub fn decide_from(&self, class: Class, path: &[u8], mask: u8) -> Verdict {
        let Some((ci, acc)) = self.walk(class, path, mask) else {
            return Verdict::Allow;
        };
        let allowlist = self.allowlist | self.allowlist_for(mask);
        // An explicit `allow connect unix:` lifts an implicit protection's refusal of that
        // socket (`check` warns); for files only ArmorExempt= lifts one.
        // (As the kernel tests it: an allow slot holds a rule index, RULE_IMPLICIT or
        // RULE_NONE, and only a rule index is below RULE_PROTECT.)
        let lifted = ci == UNIX_CLASS && acc.is_some_and(|a| a.allow[ci] < RULE_PROTECT);
        if let Some(rule) = acc.map(|a| a.deny[ci]).filter(|r| *r != RULE_NONE) {
            Verdict::Deny(rule)
        } else if let Some(p) = shared::protection_at(self.protect, ci, path).filter(|_| !lifted) {
            Verdict::Deny(RULE_PROTECT + p)
        } else if allowlist & (1 << ci) != 0 && acc.is_none_or(|a| a.allow[ci] == RULE_NONE) {
            Verdict::Deny(RULE_NOT_ALLOWED)
        } else if let Some(rule) = acc.map(|a| a.audit[ci]).filter(|r| *r != RULE_NONE) {
            Verdict::Audit(rule)
        } else {
            Verdict::Allow
        }
    }

    /// The first allow rule of `class` that `path` matches (a rule index, or
    /// [`RULE_IMPLICIT`]), whatever else decides: what lets it through an allow-list.
    pub fn allowed_by(&self, class: Class, path: &[u8], mask: u8) -> Option<u32> {
        let (ci, acc) = self.walk(class, path, mask)?;
        acc.map(|a| a.allow[ci]).filter(|r| *r != RULE_NONE)
    }

    /// The DFA class of `class` and what `path` matches in it for a process of `from=`
    /// mask `mask`; None if the class has no rules.
    fn walk(&self, class: Class, path: &[u8], mask: u8) -> Option<(usize, Option<&Accept>)> {
        let ci = match class {
            Class::Connect => Some(UNIX_CLASS),
            c => class_index(c),
        }?;
        if self.classes & (1 << ci) == 0 {
            return None;
        }
        let start = self.start_for(mask);
        Some((ci, self.accept.get(&self.walk_from(start, path))))
    }

    /// The state the DFA ends in over `bytes` from state `state`.
    fn walk_from(&self, mut state: u32, bytes: &[u8]) -> u32 {
        for &b in bytes {
            if state == 0 {
                break;
            }
            let i = state as usize + self.byte_class[b as usize] as usize;
            state = match self.cells.get(i) {
                Some(cell) if cell.check == state => cell.next,
                _ => 0,
            };
        }
        state
    }
}

#[cfg(test)]
mod tests;
