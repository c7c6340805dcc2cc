//! Runs of the `cells` array handed to policies: first fit, and a freed run merges with its
//! free neighbours. Pure, so that it is tested on the host.

use std::collections::HashMap;

/// Cells at the start of the array that are never handed out nor written (zero): tables with
/// no transition share them (see `Kernel::install_policy`).
pub const SHARED: u32 = 256;

/// Free runs of an array of `len` cells, and the run each policy holds.
#[derive(Debug)]
pub struct Regions {
    len: u32,
    /// Free runs (start, length), sorted by start, never adjacent.
    free: Vec<(u32, u32)>,
    /// Policy id -> its run (start, length).
    held: HashMap<u32, (u32, u32)>,
}

impl Regions {
    pub fn new(len: u32) -> Self {
        Regions {
            len,
            free: vec![(SHARED, len - SHARED)],
            held: HashMap::new(),
        }
    }

    /// The start of a free run of `n` cells (at least one) for policy `id`, which gives back
    /// any run it held; None if no run is that long.
    pub fn alloc(&mut self, id: u32, n: u32) -> Option<u32> {
        self.release(id);
        let n = n.max(1);
        let i = self.free.iter().position(|&(_, len)| len >= n)?;
        let (start, len) = self.free[i];
        if len == n {
            self.free.remove(i);
        } else {
            self.free[i] = (start + n, len - n);
        }
        self.held.insert(id, (start, n));
        Some(start)
    }

    /// Gives back the run policy `id` holds, if any.
    pub fn release(&mut self, id: u32) {
        let Some((start, n)) = self.held.remove(&id) else {
            return;
        };
        let i = self.free.partition_point(|&(s, _)| s < start);
        self.free.insert(i, (start, n));
        // Merge with the next run, then with the previous one.
        if i + 1 < self.free.len() && self.free[i].0 + self.free[i].1 == self.free[i + 1].0 {
            self.free[i].1 += self.free[i + 1].1;
            self.free.remove(i + 1);
        }
        if i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == self.free[i].0 {
            self.free[i - 1].1 += self.free[i].1;
            self.free.remove(i);
        }
    }

    /// Cells in use.
    pub fn used(&self) -> u32 {
        self.len - self.free.iter().map(|&(_, n)| n).sum::<u32>()
    }

    pub fn len(&self) -> u32 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_and_merging() {
        let s = SHARED;
        let mut r = Regions::new(s + 100);
        assert_eq!(r.used(), s, "the shared run is never handed out");
        let a = r.alloc(1, 30).unwrap();
        let b = r.alloc(2, 30).unwrap();
        let c = r.alloc(3, 30).unwrap();
        assert_eq!((a, b, c), (s, s + 30, s + 60));
        assert_eq!(r.alloc(4, 11), None, "10 cells are left");
        assert_eq!(r.used(), s + 90);
        r.release(2);
        assert_eq!(r.alloc(4, 40), None, "the freed run is 30 long");
        r.release(1);
        assert_eq!(r.alloc(4, 60), Some(s), "merged with the run after it");
        r.release(4);
        r.release(3);
        r.release(3);
        assert_eq!(r.used(), s, "releasing twice gives nothing back twice");
        assert_eq!(r.alloc(5, 100), Some(s), "everything merged into one run");
        assert_eq!(
            r.alloc(5, 50),
            Some(s),
            "a new run frees the policy's old one"
        );
        assert_eq!(r.used(), s + 50);
    }
}
