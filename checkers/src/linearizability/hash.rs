//! A fixed hasher written here: same input, same hash, on every run and every machine. The
//! search hashes states with it; the simulator hashes history fields into the trace with it.
//!
//! The search's tables never iterate in hash order into output, but a fixed function keeps
//! even their performance a pure function of the input, and it is faster than SipHash for
//! the short integers and long strings that states are made of.

use std::hash::{Hash, Hasher};

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The 64-bit finalizer of MurmurHash3: spreads every input bit over every output bit.
#[inline]
pub(crate) fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// The SplitMix64 generator's output function, for per-operation random keys.
#[inline]
pub(crate) fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(K);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Word-at-a-time multiplicative hashing with four independent lanes for long inputs, so
/// that hashing a long string is not one long chain of dependent multiplications.
#[derive(Default, Clone, Copy)]
pub struct FixedHasher {
    h: u64,
}

impl FixedHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.h = (self.h.rotate_left(26) ^ w).wrapping_mul(K);
    }
}

/// Up to 8 bytes as a little-endian word, the missing high bytes zero.
#[inline]
fn word(bytes: &[u8]) -> u64 {
    if let Ok(full) = <[u8; 8]>::try_from(bytes) {
        return u64::from_le_bytes(full);
    }
    // A short tail byte by byte: a copy of a variable length was a call to the C library's
    // memcpy on every hash.
    bytes.iter().rev().fold(0, |w, &b| (w << 8) | u64::from(b))
}

impl Hasher for FixedHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        if rest.len() >= 32 {
            let mut lanes = [self.h ^ 1, self.h ^ 2, self.h ^ 3, self.h ^ 4];
            while rest.len() >= 32 {
                for (lane, chunk) in lanes.iter_mut().zip(rest[..32].chunks_exact(8)) {
                    *lane = (lane.rotate_left(26) ^ word(chunk)).wrapping_mul(K);
                }
                rest = &rest[32..];
            }
            for lane in lanes {
                self.add(lane);
            }
        }
        let mut chunks = rest.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(word(chunk));
        }
        let tail = chunks.remainder();
        // The length goes in so that trailing zero bytes still change the hash.
        self.add(word(tail) ^ ((bytes.len() as u64) << 56));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fmix64(self.h)
    }
}

/// The fixed hash of any `Hash` value.
#[inline]
pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = FixedHasher::default();
    value.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_fixed_and_discriminating() {
        // Fixed: a change here changes every step count the checker reports.
        assert_eq!(hash_of("abc"), hash_of("abc"));
        assert_ne!(hash_of("abc"), hash_of("abd"));
        assert_ne!(hash_of(&[0u8; 3][..]), hash_of(&[0u8; 4][..]));
        let long_a = "x".repeat(100);
        let mut long_b = long_a.clone();
        long_b.replace_range(70..71, "y");
        assert_ne!(hash_of(&long_a), hash_of(&long_b));
        assert_ne!(hash_of(&Some(0i64)), hash_of(&None::<i64>));
        assert_ne!(splitmix64(0), splitmix64(1));
        assert_eq!(word(&[1, 2, 3]), 0x03_02_01);
        assert_eq!(word(&[1, 2, 3, 4, 5, 6, 7, 8]), u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(word(&[]), 0);
    }
}
