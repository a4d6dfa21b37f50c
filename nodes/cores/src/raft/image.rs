//! The persisted Raft state as an image that is cheap to save: the same bytes as encoding
//! (term, vote, snapshot index and term, log) in one go, held as a small header plus the
//! log's entries already encoded, in shared chunks.
//!
//! Why: the course's Persister saves the whole state every time. Re-encoding a log of n
//! entries on each of n appends is O(n²) — gigabytes for a key/value test that never
//! snapshots. Here the log keeps its entries encoded as it changes, and a save clones one
//! pointer per chunk of 64 entries; the bytes (and so every size the course bounds) are
//! exactly what a full encoding would give.

use super::messages::Entry;
use serde::Serialize;
use std::rc::Rc;

/// Entries per chunk: a save costs one pointer per chunk, a change copies at most one chunk.
const CHUNK: usize = 64;

/// Consecutive encoded entries. Shared between the live log and saved images; the live log
/// copies a chunk only when it changes one that a save still holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryChunk {
    bytes: Vec<u8>,
    /// `ends[i]` is where entry i's encoding ends in `bytes`.
    ends: Vec<u32>,
}

impl EntryChunk {
    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

impl AsRef<[u8]> for EntryChunk {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The log's entries, encoded, in chunks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EntryImage {
    chunks: Vec<Rc<EntryChunk>>,
    count: usize,
    bytes: usize,
}

fn encode_entry(e: &Entry) -> Vec<u8> {
    postcard::to_allocvec(e).expect("an entry encodes")
}

impl EntryImage {
    pub(crate) fn from_entries(entries: &[Entry]) -> Self {
        let mut image = EntryImage::default();
        for e in entries {
            image.push(e);
        }
        image
    }

    pub(crate) fn push(&mut self, e: &Entry) {
        let enc = encode_entry(e);
        if self.chunks.last().is_none_or(|c| c.len() >= CHUNK) {
            self.chunks.push(Rc::new(EntryChunk::default()));
        }
        let c = Rc::make_mut(self.chunks.last_mut().unwrap());
        c.bytes.extend_from_slice(&enc);
        c.ends.push(c.bytes.len() as u32);
        self.count += 1;
        self.bytes += enc.len();
    }

    /// The chunk holding entry `i`, and `i`'s position in it.
    fn locate(&self, mut i: usize) -> (usize, usize) {
        for (k, c) in self.chunks.iter().enumerate() {
            if i < c.len() {
                return (k, i);
            }
            i -= c.len();
        }
        panic!("entry {i} is past the end of the image");
    }

    /// Keeps the first `keep` entries.
    pub(crate) fn truncate(&mut self, keep: usize) {
        if keep >= self.count {
            return;
        }
        if keep == 0 {
            *self = EntryImage::default();
            return;
        }
        let (k, i) = self.locate(keep);
        self.chunks.truncate(k + 1);
        if i == 0 {
            self.chunks.pop();
        } else {
            let c = Rc::make_mut(&mut self.chunks[k]);
            let cut = c.start(i);
            c.bytes.truncate(cut);
            c.ends.truncate(i);
        }
        self.recount();
    }

    /// Drops the first `n` entries.
    pub(crate) fn drop_front(&mut self, n: usize) {
        if n >= self.count {
            *self = EntryImage::default();
            return;
        }
        if n == 0 {
            return;
        }
        let (k, i) = self.locate(n);
        self.chunks.drain(..k);
        if i > 0 {
            let c = Rc::make_mut(&mut self.chunks[0]);
            let cut = c.start(i);
            c.bytes.drain(..cut);
            c.ends.drain(..i);
            for e in &mut c.ends {
                *e -= cut as u32;
            }
        }
        self.recount();
    }

    /// Replaces entry `i` in place.
    pub(crate) fn replace(&mut self, i: usize, e: &Entry) {
        let (k, j) = self.locate(i);
        let enc = encode_entry(e);
        let c = Rc::make_mut(&mut self.chunks[k]);
        let (start, end) = (c.start(j), c.ends[j] as usize);
        c.bytes.splice(start..end, enc.iter().copied());
        let delta = enc.len() as i64 - (end - start) as i64;
        for x in &mut c.ends[j..] {
            *x = (*x as i64 + delta) as u32;
        }
        self.recount();
    }

    fn recount(&mut self) {
        self.count = self.chunks.iter().map(|c| c.len()).sum();
        self.bytes = self.chunks.iter().map(|c| c.bytes.len()).sum();
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

/// A saved Raft state: header (term, vote, snapshot index and term, entry count) and the
/// encoded entries. Its bytes equal a full postcard encoding of the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateImage {
    header: Vec<u8>,
    chunks: Vec<Rc<EntryChunk>>,
    len: usize,
}

#[derive(Serialize)]
struct Header {
    current_term: u64,
    voted_for: Option<usize>,
    snapshot_index: u64,
    snapshot_term: u64,
    /// Postcard writes a sequence's length before its elements.
    entries: usize,
}

impl StateImage {
    pub(crate) fn new(
        current_term: u64,
        voted_for: Option<usize>,
        snapshot_index: u64,
        snapshot_term: u64,
        log: &EntryImage,
    ) -> Self {
        let header = postcard::to_allocvec(&Header {
            current_term,
            voted_for,
            snapshot_index,
            snapshot_term,
            entries: log.count,
        })
        .expect("a header encodes");
        let len = header.len() + log.bytes;
        StateImage { header, chunks: log.chunks.clone(), len }
    }

    /// Size in bytes (the course's `RaftStateSize`).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, in one piece (what restoring reads).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        v.extend_from_slice(&self.header);
        for c in &self.chunks {
            v.extend_from_slice(&c.bytes);
        }
        v
    }

    /// The header, then each chunk of encoded entries, for storage that shares them.
    pub fn parts(&self) -> (&[u8], &[Rc<EntryChunk>]) {
        (&self.header, &self.chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::super::persist;
    use super::*;

    fn e(term: u64, n: usize) -> Entry {
        Entry { term, command: vec![n as u8; n % 7] }
    }

    #[test]
    fn image_bytes_equal_a_full_encoding_through_every_change() {
        let mut entries: Vec<Entry> = Vec::new();
        let mut image = EntryImage::default();
        let check = |entries: &[Entry], image: &EntryImage| {
            let full = persist::encode(7, Some(1), 3, 2, entries);
            let img = StateImage::new(7, Some(1), 3, 2, image);
            assert_eq!(img.to_bytes(), full);
            assert_eq!(img.len(), full.len());
            assert_eq!(persist::decode(&img.to_bytes()).unwrap().log, entries);
        };
        check(&entries, &image);
        for n in 0..300 {
            entries.push(e(n as u64 / 50 + 1, n));
            image.push(entries.last().unwrap());
        }
        check(&entries, &image);
        // A saved image keeps its bytes while the live one changes.
        let saved = StateImage::new(7, Some(1), 3, 2, &image);
        let saved_bytes = saved.to_bytes();
        entries.truncate(130);
        image.truncate(130);
        check(&entries, &image);
        entries.drain(..70);
        image.drop_front(70);
        check(&entries, &image);
        entries[3] = e(9, 33);
        image.replace(3, &entries[3]);
        check(&entries, &image);
        entries.truncate(64);
        image.truncate(64);
        check(&entries, &image);
        image.drop_front(1000);
        entries.clear();
        check(&entries, &image);
        assert_eq!(saved.to_bytes(), saved_bytes);
        assert_eq!(EntryImage::from_entries(&[e(1, 1), e(1, 2)]).count(), 2);
    }
}
