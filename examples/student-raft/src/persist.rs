//! The student Raft's own persistence encoding: a small, versioned, little-endian byte format
//! for Figure 2's persistent state (current term, vote, log) plus where the log starts after
//! the last snapshot. Written by hand, as a student writes `persist()`/`readPersist()` with
//! labgob, rather than borrowed from the project.
//!
//! Layout (all integers little-endian):
//! ```text
//! u8   version (1)
//! u64  current_term
//! u64  voted_for + 1   (0: no vote)
//! u64  snapshot index  (the log's base: the last index the snapshot covers)
//! u64  snapshot term
//! u64  entry count
//! per entry: u64 term, u32 command length, command bytes
//! ```

use crate::raft::Entry;
use std::borrow::Cow;

const VERSION: u8 = 1;

/// Figure 2's persistent state, plus the snapshot boundary the log starts after. Saving
/// borrows the log; restoring owns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durable<'a> {
    pub current_term: u64,
    pub voted_for: Option<usize>,
    pub snapshot_index: u64,
    pub snapshot_term: u64,
    pub entries: Cow<'a, [Entry]>,
}

/// The bytes of `d`.
pub fn encode(d: &Durable<'_>) -> Vec<u8> {
    let size: usize = 41 + d.entries.iter().map(|e| 12 + e.command.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(VERSION);
    out.extend_from_slice(&d.current_term.to_le_bytes());
    out.extend_from_slice(&d.voted_for.map_or(0, |v| v as u64 + 1).to_le_bytes());
    out.extend_from_slice(&d.snapshot_index.to_le_bytes());
    out.extend_from_slice(&d.snapshot_term.to_le_bytes());
    out.extend_from_slice(&(d.entries.len() as u64).to_le_bytes());
    for e in d.entries.iter() {
        out.extend_from_slice(&e.term.to_le_bytes());
        let len = u32::try_from(e.command.len()).expect("a command longer than 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&e.command);
    }
    debug_assert_eq!(out.len(), size);
    out
}

/// The state `bytes` holds; empty bytes (a first boot) are the initial state.
///
/// # Errors
/// A message naming what is wrong with bytes that are not this format.
pub fn decode(bytes: &[u8]) -> Result<Durable<'static>, String> {
    if bytes.is_empty() {
        return Ok(Durable::default());
    }
    let mut r = Reader { bytes, at: 0 };
    let version = r.take(1)?[0];
    if version != VERSION {
        return Err(format!("unknown state version {version}"));
    }
    let current_term = r.u64()?;
    let voted_for = match r.u64()? {
        0 => None,
        v => Some(usize::try_from(v - 1).map_err(|_| "vote out of range".to_string())?),
    };
    let snapshot_index = r.u64()?;
    let snapshot_term = r.u64()?;
    let count = r.u64()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let term = r.u64()?;
        let len = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes")) as usize;
        entries.push(Entry { term, command: r.take(len)?.to_vec() });
    }
    if r.at != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - r.at));
    }
    Ok(Durable { current_term, voted_for, snapshot_index, snapshot_term, entries: Cow::Owned(entries) })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("state ends at byte {} inside a field", self.bytes.len()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let d = Durable {
            current_term: 7,
            voted_for: Some(2),
            snapshot_index: 19,
            snapshot_term: 5,
            entries: Cow::Owned(vec![Entry { term: 6, command: vec![1, 2, 3] }, Entry { term: 7, command: vec![] }]),
        };
        let bytes = encode(&d);
        assert_eq!(decode(&bytes), Ok(d));
        assert_eq!(decode(&[]), Ok(Durable::default()));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err(), "a cut state is refused");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err(), "trailing bytes are refused");
        let mut other = bytes;
        other[0] = 9;
        assert!(decode(&other).is_err(), "an unknown version is refused");
        assert_eq!(decode(&encode(&Durable::default())).unwrap().voted_for, None);
    }
}
