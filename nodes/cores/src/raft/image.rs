//! The persisted Raft state as an image that is cheap to save: the same bytes as encoding
//! (term, vote, snapshot index and term, log) in one go, held as a small header plus the
//! log's entries already encoded, in shared chunks.
//!
//! Why: the course's Persister saves the whole state every time. Re-encoding a log of n
//! entries on each of n appends is O(n²) — gigabytes for a key/value test that never
//! snapshots. Here the log keeps its entries encoded as it changes, and a save clones a few
//! pointers; the bytes (and so every size the course bounds) are exactly what a full
//! encoding would give.
//!
//! Layout. Entries are appended to an open *piece* of at most [`CHUNK`] entries; a full piece
//! is sealed, and sealed pieces are merged into chunks whose lengths at least double towards
//! the front (a binary counter), so a log of n entries is held in O(log n) chunks: a save
//! clones O(log n) pointers, a change after a save copies at most the open piece, and each
//! entry is copied O(log n) times over its life. (With a pointer per 64 entries, saving was a
//! fifth of a 10 000-entry kvraft test's work.) The pieces are exactly the 64-entry chunks
//! of the earlier layout, and the last chunk is always one piece, so the parts a save hands
//! the persister begin and end as before: the trace's persist fingerprints (which hash the
//! first and last parts) are unchanged.

use super::messages::Entry;
use serde::Serialize;
use std::rc::Rc;

/// Entries per piece: a change after a save copies at most one piece.
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

    /// Entries `from..` as a chunk of their own.
    fn tail(&self, from: usize) -> EntryChunk {
        let cut = self.start(from);
        EntryChunk {
            bytes: self.bytes[cut..].to_vec(),
            ends: self.ends[from..].iter().map(|e| e - cut as u32).collect(),
        }
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
    /// `pieces[k]`: the entry counts of the pieces `chunks[k]` is made of, front to back
    /// (summing to its length). The last chunk is always one piece: the open one.
    pieces: Vec<Vec<u32>>,
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

    /// Appends an entry to the open piece, or to a new one when it is full (first merging
    /// the sealed chunks: see [`EntryImage::merge_sealed`]).
    pub(crate) fn push(&mut self, e: &Entry) {
        let open_full = self.pieces.last().is_none_or(|p| *p.last().expect("a chunk has pieces") as usize >= CHUNK);
        if open_full {
            self.merge_sealed();
            self.chunks.push(Rc::new(EntryChunk::default()));
            self.pieces.push(vec![0]);
            self.check();
        }
        let c = Rc::make_mut(self.chunks.last_mut().expect("just ensured"));
        let before = c.bytes.len();
        crate::bytes::encode_into(e, &mut c.bytes);
        c.ends.push(c.bytes.len() as u32);
        *self.pieces.last_mut().and_then(|p| p.last_mut()).expect("just ensured") += 1;
        self.count += 1;
        self.bytes += c.bytes.len() - before;
    }

    /// Merges the last chunk into the one before while that one is less than twice as long,
    /// so chunk lengths at least double towards the front.
    fn merge_sealed(&mut self) {
        while let [.., prev, last] = self.chunks.as_slice() {
            if prev.len() >= 2 * last.len() {
                break;
            }
            let last = self.chunks.pop().expect("two chunks");
            let last_pieces = self.pieces.pop().expect("two chunks");
            let prev = Rc::make_mut(self.chunks.last_mut().expect("two chunks"));
            let base = prev.bytes.len() as u32;
            prev.bytes.extend_from_slice(&last.bytes);
            prev.ends.extend(last.ends.iter().map(|end| end + base));
            self.pieces.last_mut().expect("two chunks").extend(last_pieces);
        }
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
        self.pieces.truncate(k + 1);
        // The pieces of chunk k wholly before entry i, and what is left of the one it cuts.
        let mut kept = Vec::new();
        let mut left = i as u32;
        for &p in &self.pieces[k] {
            if left == 0 {
                break;
            }
            kept.push(p.min(left));
            left -= p.min(left);
        }
        if i == 0 {
            self.chunks.pop();
            self.pieces.pop();
        } else {
            let c = Rc::make_mut(&mut self.chunks[k]);
            let cut = c.start(i);
            c.bytes.truncate(cut);
            c.ends.truncate(i);
            self.pieces[k] = kept;
        }
        // The last chunk is one piece: split off the last piece of a merged chunk.
        if let Some(last) = self.pieces.last_mut() {
            if last.len() > 1 {
                let piece = last.pop().expect("several pieces") as usize;
                let k = self.chunks.len() - 1;
                let from = self.chunks[k].len() - piece;
                let tail = self.chunks[k].tail(from);
                let c = Rc::make_mut(&mut self.chunks[k]);
                c.bytes.truncate(c.start(from));
                c.ends.truncate(from);
                self.chunks.push(Rc::new(tail));
                self.pieces.push(vec![piece as u32]);
            }
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
        self.pieces.drain(..k);
        if i > 0 {
            let c = Rc::make_mut(&mut self.chunks[0]);
            let cut = c.start(i);
            c.bytes.drain(..cut);
            c.ends.drain(..i);
            for e in &mut c.ends {
                *e -= cut as u32;
            }
            // Whole pieces go; the first one left loses what remains of the `i`.
            let pieces = &mut self.pieces[0];
            let mut drop = i as u32;
            while drop >= pieces[0] {
                drop -= pieces.remove(0);
            }
            pieces[0] -= drop;
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
        self.check();
    }

    /// The layout's invariants (debug builds; sweeps run with them).
    fn check(&self) {
        debug_assert_eq!(self.chunks.len(), self.pieces.len());
        debug_assert!(self
            .chunks
            .iter()
            .zip(&self.pieces)
            .all(|(c, p)| p.iter().map(|&n| n as usize).sum::<usize>() == c.len()
                && p.iter().all(|&n| n > 0 || c.len() == 0)));
        debug_assert!(self.pieces.last().is_none_or(|p| p.len() == 1), "the last chunk is one piece");
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Number of chunks (tests).
    #[cfg(test)]
    fn chunk_count(&self) -> usize {
        self.chunks.len()
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

    /// The earlier layout, chunks of at most 64 entries, kept as the model of where the last
    /// part starts.
    fn last_piece_start(pieces: &[usize]) -> usize {
        pieces[..pieces.len().saturating_sub(1)].iter().sum()
    }

    #[test]
    fn a_long_log_is_held_in_few_chunks_ending_where_fixed_chunks_would() {
        let mut entries: Vec<Entry> = Vec::new();
        let mut image = EntryImage::default();
        // The fixed-chunk layout's chunk lengths, maintained alongside as a model.
        let mut fixed: Vec<usize> = Vec::new();
        let push = |entries: &mut Vec<Entry>, image: &mut EntryImage, fixed: &mut Vec<usize>, e: Entry| {
            entries.push(e);
            image.push(entries.last().unwrap());
            match fixed.last_mut() {
                Some(n) if *n < CHUNK => *n += 1,
                _ => fixed.push(1),
            }
        };
        let check = |entries: &[Entry], image: &EntryImage, fixed: &[usize]| {
            let img = StateImage::new(1, None, 0, 0, image);
            assert_eq!(img.to_bytes(), persist::encode(1, None, 0, 0, entries));
            // The last part holds exactly the fixed layout's last chunk.
            let (_, chunks) = img.parts();
            let last = chunks.last().map(|c| c.len()).unwrap_or(0);
            assert_eq!(last, fixed.last().copied().unwrap_or(0));
            assert_eq!(entries.len() - last, last_piece_start(fixed));
        };
        for n in 0..10_000 {
            push(&mut entries, &mut image, &mut fixed, e(1 + n as u64 / 1000, n));
            if n % 997 == 0 {
                check(&entries, &image, &fixed);
            }
        }
        check(&entries, &image, &fixed);
        // Lengths at least double towards the front: 156 sealed pieces need about
        // log2(156) ≈ 8 chunks, plus the open one.
        assert!(image.chunk_count() <= 10, "{} chunks", image.chunk_count());
        // Truncating inside a merged chunk, and compacting, keep bytes and the last part
        // right, and appending goes on as the fixed layout would.
        for (round, (keep, drop)) in
            [(7_777, 1_234), (6_000, 0), (5_800, 64), (2_000, 1_999), (200, 100)].into_iter().enumerate()
        {
            assert!(keep < entries.len() && drop < keep);
            entries.truncate(keep);
            image.truncate(keep);
            let (mut cut, mut k) = (keep, 0);
            while cut >= fixed[k] {
                cut -= fixed[k];
                k += 1;
            }
            fixed.truncate(k + 1);
            if cut == 0 {
                fixed.pop();
            } else {
                fixed[k] = cut;
            }
            check(&entries, &image, &fixed);
            entries.drain(..drop);
            image.drop_front(drop);
            let mut d = drop;
            while d > 0 && d >= fixed[0] {
                d -= fixed.remove(0);
            }
            if d > 0 {
                fixed[0] -= d;
            }
            check(&entries, &image, &fixed);
            for n in 0..150 + 37 * round {
                push(&mut entries, &mut image, &mut fixed, e(20 + keep as u64, n));
            }
            check(&entries, &image, &fixed);
        }
    }
}
