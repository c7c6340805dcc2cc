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

mod caps;
mod groups;
mod minimize;
mod net;
mod pack;

pub use caps::{CapTable, CAP_SLOTS};
pub use groups::{Group, RuleFinder, GROUP_ABOVE};
pub use net::{NetTable, PortEntry, NET_SLOTS, PORT_RULES};

use std::collections::{HashMap, VecDeque};

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, MatchKind};

use crate::policy::net::SocketPattern;
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
/// Denied by implicit protection `p`: `RULE_PROTECT + p as u32`.
pub const RULE_PROTECT: u32 = 0xffff_ff00;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub check: u32,
    pub next: u32,
}
/// Memory the DFA construction may use before the policy is declared too complex.
const BUILD_LIMIT: usize = 64 << 20;

/// What a path that ends in a state matches, per path class: rule indexes into
/// [`Policy::rules`] or [`RULE_NONE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Accept {
    pub deny: [u32; PATH_CLASSES],
    pub allow: [u32; PATH_CLASSES],
    pub audit: [u32; PATH_CLASSES],
}

impl Default for Accept {
    fn default() -> Self {
        Accept {
            deny: [RULE_NONE; PATH_CLASSES],
            allow: [RULE_NONE; PATH_CLASSES],
            audit: [RULE_NONE; PATH_CLASSES],
        }
    }
}

/// The kernel tables of one policy.
#[derive(Clone, Debug, PartialEq)]
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
    /// Rules the kernel side does not enforce yet, with the reason (reported, never dropped
    /// silently).
    pub unenforced: Vec<(usize, String)>,
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

/// The units `allow signal` and `allow ptrace` rules name, with what each allows.
fn peers_of(policy: &Policy) -> std::collections::BTreeMap<String, u32> {
    let mut peers = std::collections::BTreeMap::new();
    for r in policy.rules.iter().filter(|r| r.action == Action::Allow) {
        let bit = match r.class {
            Class::Signal => PEER_SIGNAL,
            Class::Ptrace => PEER_PTRACE,
            _ => continue,
        };
        if let crate::policy::Target::Units(units) = &r.target {
            for u in units {
                *peers.entry(u.clone()).or_insert(0) |= bit;
            }
        }
    }
    peers
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

/// Compiles `policy` for a unit whose cgroup is `cgroup` (`/system.slice/app.service`, or a
/// pattern for a slice's or template's units). A write allow-list then also allows that
/// cgroup's `cgroup.procs`, which systemd writes to put the service's processes there; no
/// other cgroup's. Rules of classes the kernel does not enforce yet are listed in
/// [`Tables::unenforced`].
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
    let mut unenforced = Vec::new();
    for (i, rule) in policy.rules.iter().enumerate() {
        if matches!(rule.class, Class::Cap | Class::Net | Class::Bind)
            || (rule.class == Class::Connect && !rule.is_unix())
        {
            // Decided per capability (caps.rs), family or port (net.rs), not by the DFA.
            if rule.from.is_some() {
                unenforced.push((i, "from= is not enforced by this version".to_string()));
            }
            continue;
        }
        let Some(ci) = rule_class(rule) else {
            continue; // every other class was taken above
        };
        classes |= 1 << ci;
        if rule.action == Action::Allow {
            allowlist |= 1 << ci;
        }
        if rule.from.is_some() {
            // Not enforced: its patterns are left out, but an allow rule still makes its
            // class an allow-list (allowing less than written, never more).
            unenforced.push((i, "from= is not enforced by this version".to_string()));
            continue;
        }
        for p in rule.paths() {
            patterns.push(p.to_regex());
            owner.push((i as u32, ci, rule.action));
        }
        for re in rule.unix_regexes() {
            patterns.push(re);
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
    // Implicit protections: deny entries in the DFA for the path ones (the kernel checks the
    // others by identity); the classes they need are decided for every armored unit.
    let mut protect = 0u32;
    for p in Protection::ALL {
        if policy.is_exempt(p) {
            continue;
        }
        protect |= 1 << p as u32;
        let writes = p
            .write_paths()
            .iter()
            .filter_map(|w| crate::policy::PathPattern::parse(w).ok())
            .map(|w| (w.to_regex(), 1));
        let sockets = p
            .unix_paths()
            .iter()
            .filter_map(|u| SocketPattern::parse(&format!("unix:{u}")).ok())
            .map(|u| (u.to_regex(), UNIX_CLASS));
        for (regex, ci) in writes.chain(sockets) {
            patterns.push(regex);
            owner.push((RULE_PROTECT + p as u32, ci, Action::Deny));
            classes |= 1 << ci;
        }
    }
    let mut implicit = |path: &str, ci: usize| {
        if let Ok(pattern) = crate::policy::PathPattern::parse(path) {
            patterns.push(pattern.to_regex());
            owner.push((RULE_IMPLICIT, ci, Action::Allow));
        }
    };
    if classes & (1 << UNIX_CLASS) != 0 {
        IMPLICIT_UNIX_ALLOW
            .iter()
            .for_each(|p| implicit(p, UNIX_CLASS));
    }
    if allowlist & (1 << 1) != 0 {
        IMPLICIT_WRITE_ALLOW.iter().for_each(|p| implicit(p, 1));
        if let Some(cg) = cgroup {
            implicit(&format!("/sys/fs/cgroup{cg}/cgroup.procs"), 1);
        }
    }
    let groups = if group
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
        byte_class: [0; 256],
        cells: Vec::new(),
        accept: HashMap::new(),
        caps: CapTable::of(policy),
        net: NetTable::of(policy).map_err(CompileError::TooComplex)?,
        peers: peers_of(policy),
        unenforced,
        groups,
    };
    let mut trans: HashMap<(u32, u8), u32> = HashMap::new();
    if patterns.is_empty() {
        return Ok(tables);
    }

    let dfa = dense::Builder::new()
        .configure(
            dense::Config::new()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored)
                // Minimized on the extracted tables instead (minimize.rs): much faster for
                // many rules.
                .minimize(false)
                .dfa_size_limit(Some(BUILD_LIMIT))
                .determinize_size_limit(Some(BUILD_LIMIT)),
        )
        .syntax(
            syntax::Config::new()
                .unicode(false)
                .utf8(false)
                .dot_matches_new_line(true),
        )
        .build_many(&patterns)
        .map_err(|e| CompileError::TooComplex(e.to_string()))?;

    let classes_of = dfa.byte_classes();
    for b in 0..=255u8 {
        tables.byte_class[b as usize] = classes_of.get(b);
    }
    let reps: Vec<(u8, u8)> = classes_of
        .representatives(..)
        .filter_map(|u| u.as_u8())
        .map(|b| (classes_of.get(b), b))
        .collect();

    let start = dfa
        .start_state(&start::Config::new().anchored(Anchored::Yes))
        .map_err(|e| CompileError::TooComplex(e.to_string()))?;
    let mut ids = HashMap::new();
    let mut queue = VecDeque::new();
    ids.insert(start, 1u32);
    queue.push_back(start);
    while let Some(s) = queue.pop_front() {
        let sid = ids[&s];
        let eoi = dfa.next_eoi_state(s);
        if dfa.is_match_state(eoi) {
            let mut acc = Accept::default();
            for k in 0..dfa.match_len(eoi) {
                let (rule, ci, action) = owner[dfa.match_pattern(eoi, k).as_usize()];
                let slot = match action {
                    Action::Deny => &mut acc.deny[ci],
                    Action::Allow => &mut acc.allow[ci],
                    Action::Audit => &mut acc.audit[ci],
                };
                *slot = (*slot).min(rule);
            }
            // An explicit `allow connect unix:` lifts an implicit protection's refusal of
            // that socket (`check` warns); for files only ArmorExempt= lifts one.
            let (deny, allow) = (acc.deny[UNIX_CLASS], acc.allow[UNIX_CLASS]);
            if protection_of(deny).is_some() && allow < RULE_IMPLICIT {
                acc.deny[UNIX_CLASS] = RULE_NONE;
            }
            tables.accept.insert(sid, acc);
        }
        for &(class, byte) in &reps {
            let next = dfa.next_state(s, byte);
            if dfa.is_dead_state(next) {
                continue;
            }
            let n = ids.len() as u32 + 1;
            let nid = *ids.entry(next).or_insert_with(|| {
                queue.push_back(next);
                n
            });
            trans.insert((sid, class), nid);
        }
        // Before minimizing, allow more: literal paths share their endings only after it.
        if ids.len() > 16 * MAX_STATES || trans.len() > 16 * MAX_TRANSITIONS {
            return Err(too_complex());
        }
    }
    let mut states = ids.len();
    if minimize {
        let byte_classes: Vec<u8> = reps.iter().map(|&(class, _)| class).collect();
        let (t, accept) = minimize::minimize(states, &byte_classes, &trans, &tables.accept);
        trans = t;
        tables.accept = accept;
        states = trans
            .values()
            .copied()
            .chain(tables.accept.keys().copied())
            .max()
            .unwrap_or(1)
            .max(1) as usize;
    }
    if states + 1 > MAX_STATES || trans.len() > MAX_TRANSITIONS {
        return Err(too_complex());
    }
    let classes = reps.iter().map(|&(c, _)| c as usize + 1).max().unwrap_or(1);
    let packed = pack::pack(states, classes, &trans, &tables.accept);
    if packed.cells.len() > MAX_CELLS {
        return Err(too_complex());
    }
    tables.start = packed.bases[1];
    tables.cells = packed.cells;
    tables.accept = packed.accept;
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
        unenforced: Vec::new(),
        groups: Vec::new(),
    }
}

fn too_complex() -> CompileError {
    CompileError::TooComplex(format!(
        "more than {MAX_STATES} states, {MAX_TRANSITIONS} transitions or {MAX_CELLS} cells"
    ))
}

impl Tables {
    /// Decides an operation of `class` on `path` exactly as the kernel does.
    pub fn decide(&self, class: Class, path: &[u8]) -> Verdict {
        let Some((ci, acc)) = self.walk(class, path) else {
            return Verdict::Allow;
        };
        if let Some(rule) = acc.map(|a| a.deny[ci]).filter(|r| *r != RULE_NONE) {
            Verdict::Deny(rule)
        } else if self.allowlist & (1 << ci) != 0 && acc.is_none_or(|a| a.allow[ci] == RULE_NONE) {
            Verdict::Deny(RULE_NOT_ALLOWED)
        } else if let Some(rule) = acc.map(|a| a.audit[ci]).filter(|r| *r != RULE_NONE) {
            Verdict::Audit(rule)
        } else {
            Verdict::Allow
        }
    }

    /// The first allow rule of `class` that `path` matches (a rule index, or
    /// [`RULE_IMPLICIT`]), whatever else decides: what lets it through an allow-list.
    pub fn allowed_by(&self, class: Class, path: &[u8]) -> Option<u32> {
        let (ci, acc) = self.walk(class, path)?;
        acc.map(|a| a.allow[ci]).filter(|r| *r != RULE_NONE)
    }

    /// The DFA class of `class` and what `path` matches in it; None if the class has no rules.
    fn walk(&self, class: Class, path: &[u8]) -> Option<(usize, Option<&Accept>)> {
        let ci = match class {
            Class::Connect => Some(UNIX_CLASS),
            c => class_index(c),
        }?;
        if self.classes & (1 << ci) == 0 {
            return None;
        }
        let mut state = self.start;
        for &b in path {
            let i = state as usize + self.byte_class[b as usize] as usize;
            state = match self.cells.get(i) {
                Some(cell) if cell.check == state => cell.next,
                _ => 0,
            };
            if state == 0 {
                break;
            }
        }
        Some((ci, self.accept.get(&state)))
    }
}

#[cfg(test)]
mod tests;
