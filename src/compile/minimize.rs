//! DFA minimization on the compiled tables: states that decide alike are merged.
//!
//! regex-automata can minimize its own DFAs, but its minimizer grows with the square of the
//! number of distinct match states: a policy of 2,000 literal paths (each its own match state)
//! took 16 seconds, 10,000 several minutes, during which the daemon armored nothing else.
//! Moore's partition refinement on the extracted tables costs (states x byte classes) per
//! round and needs as many rounds as the longest path that tells two states apart, which is
//! bounded by the path length: well under a second for 10,000 rules. Pure, like the compiler.
//!
//! The result is the minimal DFA of the tables: two states are merged exactly when every path
//! continued from either ends in the same accept entry, so the kernel's "same state" test for
//! a renamed directory (bpf/files.h) holds for every pair of equivalent directories.

use std::collections::{HashMap, VecDeque};

use super::Accept;

/// Minimizes a DFA of `n` states numbered 1..=n (0 is the dead state), start state 1, over
/// byte classes `classes`. Returns the new transitions and accept entries, numbered the same
/// way (0 dead, 1 start, the rest in breadth-first order from the start).
pub(super) fn minimize(
    n: usize,
    classes: &[u8],
    trans: &HashMap<(u32, u8), u32>,
    accept: &HashMap<u32, Accept>,
) -> (HashMap<(u32, u8), u32>, HashMap<u32, Accept>) {
    // Dense transitions, state-major: row s holds the next state per class (0 = dead).
    let k = classes.len();
    let mut dense = vec![0u32; (n + 1) * k];
    for (&(s, c), &t) in trans {
        if let Some(ci) = classes.iter().position(|&x| x == c) {
            dense[s as usize * k + ci] = t;
        }
    }
    let next = |s: usize, ci: usize| dense[s * k + ci] as usize;
    // Initial partition: by accept entry. The dead state (0) is in the block of the states
    // that accept nothing; states that can reach no accepting state end up merged with it.
    let mut block = vec![0u32; n + 1];
    {
        let mut ids: HashMap<Option<Accept>, u32> = HashMap::new();
        ids.insert(None, 0);
        for (s, b) in block.iter_mut().enumerate().skip(1) {
            let key = accept.get(&(s as u32)).copied();
            let fresh = ids.len() as u32;
            *b = *ids.entry(key).or_insert(fresh);
        }
    }
    let mut count = block.iter().collect::<std::collections::HashSet<_>>().len();
    // Each state's signature (its block, then its successors' blocks), all in one buffer
    // written anew each round, not one allocation per state and round (a daemon starting with
    // a thousand small policies compiles them all: 5 % of their compile time on the host).
    let w = k + 1;
    let mut sigs = vec![0u32; (n + 1) * w];
    loop {
        for s in 0..=n {
            let sig = &mut sigs[s * w..(s + 1) * w];
            sig[0] = block[s];
            for ci in 0..k {
                sig[ci + 1] = block[next(s, ci)];
            }
        }
        let mut ids: HashMap<&[u32], u32> = HashMap::with_capacity(count * 2);
        let mut refined = vec![0u32; n + 1];
        // The dead state first, so that its block keeps number 0.
        for (s, sig) in sigs.chunks_exact(w).enumerate() {
            let fresh = ids.len() as u32;
            refined[s] = *ids.entry(sig).or_insert(fresh);
        }
        let new_count = ids.len();
        block = refined;
        if new_count == count {
            break;
        }
        count = new_count;
    }
    // Renumber: the dead state's block is 0, the start's 1, then breadth-first.
    let dead = block[0];
    let mut number: HashMap<u32, u32> = HashMap::new();
    let mut rep: Vec<usize> = vec![0];
    let mut queue = VecDeque::new();
    number.insert(dead, 0);
    if block[1] != dead {
        number.insert(block[1], 1);
        rep.push(1);
        queue.push_back(1usize);
    }
    let mut out_trans = HashMap::new();
    let mut out_accept = HashMap::new();
    while let Some(s) = queue.pop_front() {
        let id = number[&block[s]];
        if let Some(a) = accept.get(&(s as u32)) {
            out_accept.insert(id, *a);
        }
        for (ci, &c) in classes.iter().enumerate() {
            let t = next(s, ci);
            let b = block[t];
            if b == dead {
                continue;
            }
            let fresh = number.len() as u32;
            let tid = *number.entry(b).or_insert_with(|| {
                rep.push(t);
                queue.push_back(t);
                fresh
            });
            out_trans.insert((id, c), tid);
        }
    }
    (out_trans, out_accept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(rule: u32) -> Accept {
        let mut a = Accept::default();
        a.deny[0] = rule;
        a
    }

    #[test]
    fn merges_equivalent_states_and_keeps_distinct_ones() {
        // 1 -a-> 2 -x-> 4 (accept 7); 1 -b-> 3 -x-> 5 (accept 7); 1 -c-> 6 -x-> 7 (accept 8).
        // 2 and 3 are equivalent (so are 4 and 5); 6 is not (7 accepts another rule).
        let trans: HashMap<(u32, u8), u32> = [
            ((1, 0), 2),
            ((1, 1), 3),
            ((1, 2), 6),
            ((2, 3), 4),
            ((3, 3), 5),
            ((6, 3), 7),
        ]
        .into_iter()
        .collect();
        let accept: HashMap<u32, Accept> = [(4, acc(7)), (5, acc(7)), (7, acc(8))]
            .into_iter()
            .collect();
        let (t, a) = minimize(7, &[0, 1, 2, 3], &trans, &accept);
        assert_eq!(t[&(1, 0)], t[&(1, 1)], "a and b lead to one state");
        assert_ne!(t[&(1, 0)], t[&(1, 2)], "c leads elsewhere");
        let states: std::collections::HashSet<u32> = t.values().copied().collect();
        assert_eq!(states.len(), 4, "2=3, 4=5, 6, 7");
        assert_eq!(a.len(), 2);
        assert_eq!(a[&t[&(t[&(1, 0)], 3)]], acc(7));
        assert_eq!(a[&t[&(t[&(1, 2)], 3)]], acc(8));
    }

    #[test]
    fn states_that_reach_no_match_become_the_dead_state() {
        // 1 -a-> 2 -a-> 3 (accept); 1 -b-> 4 -b-> 5 (nothing, no way on).
        let trans: HashMap<(u32, u8), u32> = [((1, 0), 2), ((2, 0), 3), ((1, 1), 4), ((4, 1), 5)]
            .into_iter()
            .collect();
        let accept: HashMap<u32, Accept> = [(3, acc(1))].into_iter().collect();
        let (t, _) = minimize(5, &[0, 1], &trans, &accept);
        assert!(
            !t.contains_key(&(1, 1)),
            "b leads to the dead state: no entry"
        );
        assert_eq!(t.len(), 2);
    }
}
