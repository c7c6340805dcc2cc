//! Packing the DFA into the kernel's cell array: one array read per path byte.
//!
//! A state's row (its next state per byte class) is laid over a shared array of cells at an
//! offset of its own, its *base*, so that the rows of many states interleave and the array
//! holds about as many cells as the DFA has transitions (row displacement, as in lex and
//! yacc's tables). Cell `base + class` belongs to the state whose base its `check` holds, and
//! its `next` is the base of the state it leads to: a state is known by its base from here on,
//! and the kernel walks a path with one array lookup and one comparison per byte, no hash.
//! Bases start at 1 (0 stays the dead state), and the array extends past the largest base by
//! the number of classes, so that a walk never reads past its own policy's cells.
//! Pure, like the compiler.

use std::collections::HashMap;

use super::{Accept, Cell, CELL_FREE};

/// The packed form of a DFA of states 1..n (0 dead) over `classes` byte classes: the cells,
/// the base of each state (index 0 unused) and the accept entries keyed by base.
pub(super) struct Packed {
    pub cells: Vec<Cell>,
    pub bases: Vec<u32>,
    pub accept: HashMap<u32, Accept>,
}

/// Packs `trans` ((state, class) -> next state) of states 1..=n over `classes` byte classes.
pub(super) fn pack(
    n: usize,
    classes: usize,
    trans: &HashMap<(u32, u8), u32>,
    accept: &HashMap<u32, Accept>,
) -> Packed {
    let mut rows: Vec<Vec<(u8, u32)>> = vec![Vec::new(); n + 1];
    for (&(s, c), &t) in trans {
        rows[s as usize].push((c, t));
    }
    for row in &mut rows {
        row.sort_unstable();
    }
    // The fullest rows first, while the array is empty; the sparse ones fill the gaps.
    let mut order: Vec<usize> = (1..=n).collect();
    order.sort_by_key(|&s| (std::cmp::Reverse(rows[s].len()), s));

    let mut owner: Vec<u32> = Vec::new(); // per cell: the base that owns it, or CELL_FREE
    let mut is_base: Vec<bool> = vec![false]; // 0 is never a base
    let mut first_free = 1usize; // no free cell below this one
    let mut next_empty_base = 1usize; // for states without transitions
    let mut bases = vec![0u32; n + 1];
    for s in order {
        let row = &rows[s];
        let base = if row.is_empty() {
            while is_base.get(next_empty_base).copied().unwrap_or(false) {
                next_empty_base += 1;
            }
            next_empty_base
        } else {
            let lowest = row[0].0 as usize;
            let mut b = first_free.saturating_sub(lowest).max(1);
            loop {
                let free = !is_base.get(b).copied().unwrap_or(false)
                    && row
                        .iter()
                        .all(|&(c, _)| owner.get(b + c as usize).is_none_or(|&o| o == CELL_FREE));
                if free {
                    break b;
                }
                b += 1;
            }
        };
        if is_base.len() <= base {
            is_base.resize(base + 1, false);
        }
        is_base[base] = true;
        for &(c, _) in row {
            let i = base + c as usize;
            if owner.len() <= i {
                owner.resize(i + 1, CELL_FREE);
            }
            owner[i] = base as u32;
        }
        while owner.get(first_free).is_some_and(|&o| o != CELL_FREE) {
            first_free += 1;
        }
        bases[s] = base as u32;
    }

    let top = bases.iter().copied().max().unwrap_or(0) as usize;
    let mut cells = vec![
        Cell {
            check: CELL_FREE,
            next: 0,
        };
        top + classes.max(1)
    ];
    for (s, row) in rows.iter().enumerate().skip(1) {
        for &(c, t) in row {
            cells[bases[s] as usize + c as usize] = Cell {
                check: bases[s],
                next: bases[t as usize],
            };
        }
    }
    let accept = accept
        .iter()
        .map(|(&s, a)| (bases[s as usize], *a))
        .collect();
    Packed {
        cells,
        bases,
        accept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `classes` through the packed cells from `start`'s base, as the kernel does.
    fn walk(p: &Packed, start: usize, path: &[u8]) -> u32 {
        let mut base = p.bases[start];
        for &c in path {
            match p.cells.get(base as usize + c as usize) {
                Some(cell) if cell.check == base => base = cell.next,
                _ => return 0,
            }
        }
        base
    }

    #[test]
    fn every_transition_survives_and_no_other_appears() {
        // A dense-ish DFA: state s goes to (s * 7 + c) % n + 1 on classes where (s + c) % 3 != 0.
        let (n, k) = (200usize, 11usize);
        let mut trans = HashMap::new();
        for s in 1..=n {
            for c in 0..k {
                if (s + c) % 3 != 0 {
                    trans.insert((s as u32, c as u8), ((s * 7 + c) % n + 1) as u32);
                }
            }
        }
        let p = pack(n, k, &trans, &HashMap::new());
        let bases: std::collections::HashSet<u32> = p.bases[1..].iter().copied().collect();
        assert_eq!(bases.len(), n, "every state has a base of its own");
        assert!(!bases.contains(&0), "0 stays the dead state");
        for s in 1..=n {
            for c in 0..k {
                let want = trans
                    .get(&(s as u32, c as u8))
                    .map_or(0, |&t| p.bases[t as usize]);
                assert_eq!(walk(&p, s, &[c as u8]), want, "state {s} class {c}");
            }
        }
        assert!(
            p.cells.len() < trans.len() * 2,
            "{} cells for {} transitions",
            p.cells.len(),
            trans.len()
        );
        let top = *p.bases.iter().max().unwrap() as usize;
        assert!(
            p.cells.len() >= top + k,
            "a walk never reads past the cells"
        );
    }

    #[test]
    fn states_without_transitions_get_distinct_bases() {
        let mut trans = HashMap::new();
        trans.insert((1, 0), 2);
        trans.insert((1, 1), 3);
        let mut accept = HashMap::new();
        accept.insert(2, Accept::default());
        accept.insert(3, Accept::default());
        let p = pack(3, 2, &trans, &accept);
        assert_ne!(p.bases[2], p.bases[3]);
        assert_eq!(walk(&p, 1, &[0]), p.bases[2]);
        assert_eq!(walk(&p, 1, &[1]), p.bases[3]);
        assert_eq!(walk(&p, 1, &[1, 0]), 0, "no transition out of an end state");
        assert!(p.accept.contains_key(&p.bases[2]) && p.accept.contains_key(&p.bases[3]));
    }
}
