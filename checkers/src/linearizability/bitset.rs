//! A fixed-size set of operation indices, 64 per word, with an incrementally kept hash.
//!
//! The hash is Zobrist-style: the XOR of a fixed random key per member, so adding or
//! removing one operation updates it in O(1) instead of rehashing every word per step.

use super::hash::splitmix64;

/// The set of operations linearized so far, plus its hash.
#[derive(Clone, Debug)]
pub(crate) struct Bitset {
    words: Vec<u64>,
    hash: u64,
}

/// The Zobrist key of member `i`.
#[inline]
fn key(i: usize) -> u64 {
    splitmix64(i as u64)
}

impl Bitset {
    /// An empty set able to hold `0..len`.
    pub(crate) fn new(len: usize) -> Self {
        Bitset { words: vec![0; len.div_ceil(64).max(1)], hash: 0 }
    }

    /// Adds `i`, which must be absent (not checked: the search's stack discipline ensures it,
    /// and a witness is replayed in the end).
    #[inline]
    pub(crate) fn insert(&mut self, i: usize) {
        let (w, b) = (i / 64, i % 64);
        self.words[w] |= 1 << b;
        self.hash ^= key(i);
    }

    /// Removes `i`, which must be present (not checked, likewise).
    #[inline]
    pub(crate) fn remove(&mut self, i: usize) {
        let (w, b) = (i / 64, i % 64);
        self.words[w] &= !(1 << b);
        self.hash ^= key(i);
    }

    /// True when `i` is a member.
    #[inline]
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// The hash of the members (equal sets have equal hashes).
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The hash the set will have once `i` (absent) is added.
    #[inline]
    pub(crate) fn hash_with(&self, i: usize) -> u64 {
        self.hash ^ key(i)
    }

    /// The raw words, for storing the set in the memo table.
    #[inline]
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_only_on_membership() {
        let mut a = Bitset::new(130);
        let mut b = Bitset::new(130);
        for i in [3, 64, 129] {
            a.insert(i);
        }
        for i in [129, 7, 3, 64] {
            b.insert(i);
        }
        b.remove(7);
        assert_eq!(a.words(), b.words());
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.words(), &[1 << 3, 1, 1 << 1]);
        a.remove(64);
        assert_ne!(a.hash(), b.hash());
        assert_eq!(Bitset::new(0).words().len(), 1);
        assert_eq!(Bitset::new(64).words().len(), 1);
        assert_eq!(Bitset::new(65).words().len(), 2);
    }
}
