//! One multi-pattern DFA, built with regex-automata, minimized (`minimize.rs`) and packed into
//! cells (`pack.rs`): the part of compiling that a policy's own table and the implicit
//! protections' shared table (`shared.rs`) have in common. What an accepting state records is
//! the caller's: `merge` folds each pattern that matches there into its [`Accept`].

use std::collections::{HashMap, VecDeque};

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, MatchKind};

use super::{minimize, pack, too_complex, Accept, Cell, CompileError};
use super::{MAX_CELLS, MAX_STATES, MAX_TRANSITIONS};
use crate::policy::Action;

/// Memory the DFA construction may use before the policy is declared too complex.
const BUILD_LIMIT: usize = 64 << 20;

/// A built and packed DFA.
pub(super) struct Built {
    /// The start state's base.
    pub start: u32,
    pub byte_class: [u8; 256],
    pub cells: Vec<Cell>,
    /// State base -> what a path ending there matches.
    pub accept: HashMap<u32, Accept>,
}

/// Builds the DFA of `patterns` (anchored regular expressions over bytes); `owner[i]` is what
/// pattern `i` stands for (a rule, its class index and action), which `merge` records in the
/// accepting states' [`Accept`]. Without `minimize`, the DFA as regex-automata built it.
pub(super) fn build(
    patterns: &[String],
    owner: &[(u32, usize, Action)],
    minimize: bool,
    merge: impl Fn(&mut Accept, u32, usize, Action),
) -> Result<Built, CompileError> {
    let mut trans: HashMap<(u32, u8), u32> = HashMap::new();
    let mut accept = HashMap::new();
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
        .build_many(patterns)
        .map_err(|e| CompileError::TooComplex(e.to_string()))?;

    let classes_of = dfa.byte_classes();
    let mut byte_class = [0u8; 256];
    for b in 0..=255u8 {
        byte_class[b as usize] = classes_of.get(b);
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
                merge(&mut acc, rule, ci, action);
            }
            accept.insert(sid, acc);
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
        let (t, a) = minimize::minimize(states, &byte_classes, &trans, &accept);
        trans = t;
        accept = a;
        states = trans
            .values()
            .copied()
            .chain(accept.keys().copied())
            .max()
            .unwrap_or(1)
            .max(1) as usize;
    }
    if states + 1 > MAX_STATES || trans.len() > MAX_TRANSITIONS {
        return Err(too_complex());
    }
    let classes = reps.iter().map(|&(c, _)| c as usize + 1).max().unwrap_or(1);
    let packed = pack::pack(states, classes, &trans, &accept);
    if packed.cells.len() > MAX_CELLS {
        return Err(too_complex());
    }
    Ok(Built {
        start: packed.bases[1],
        byte_class,
        cells: packed.cells,
        accept: packed.accept,
    })
}
