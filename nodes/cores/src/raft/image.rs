//! The persisted Raft state as an image that is cheap to save: the same bytes as encoding
//! (term, vote, snapshot index and term, log) in one go, held as a small header plus the
//! log's entries already encoded, in a few shared parts.
//!
//! Why: the course's Persister saves the whole state every time. Re-encoding a log of n
//! entries on each of n appends is O(n²) — gigabytes for a key/value test that never
//! snapshots. Here the log keeps its entries encoded as it changes, and a save costs what
//! changed: it clones O(log n) pointers, and the next append copies at most the last chunk
//! of 16 entries, which the save still shares. The bytes (and so every size the course
//! bounds) are exactly what a full encoding would give.
//!
//! Layout. The entries are cut into *chunks* of 16, counted from the front: the first chunk
//! may be shorter after a compaction (`first_len`), every other one but the last is full.
//! The last chunk, the *tail*, is the only one that changes on an append; the complete
//! chunks before it are *sealed* into immutable segments that are merged as they
//! accumulate, so that segment sizes shrink geometrically towards the back and there are
//! O(log n) of them. A save's parts are the header, the sealed segments and the tail: the
//! simulator fingerprints the first and last parts only, so the tail being exactly the last
//! 16-entry chunk is part of the trace's meaning, and is kept.

use super::messages::Entry;
use serde::Serialize;
use std::ops::Range;
use std::rc::Rc;

/// Entries per chunk: an append copies at most one chunk that a save still holds. Sixteen,
/// not 64 (until session 8): a log without snapshots copied 32 entries per append on
/// average, a tenth of a key/value run's instructions; the sealed segments' merges add
/// about two copies per entry.
const CHUNK: usize = 16;

/// Encoded entries laid end to end; immutable once a view on it is shared.
#[derive(Clone, Debug, Default)]
struct Run {
    bytes: Vec<u8>,
    /// `ends[i]` is where entry i's encoding ends in `bytes`.
    ends: Vec<u32>,
}

impl Run {
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

    /// A run holding `parts` one after the other, with room for `extra` more bytes.
    fn concat(parts: &[&EntryChunk], extra: usize) -> Run {
        let bytes: usize = parts.iter().map(|p| p.byte_len()).sum();
        let count: usize = parts.iter().map(|p| p.len()).sum();
        assert!(bytes + extra <= u32::MAX as usize, "a log image over 4 GiB");
        let mut run = Run { bytes: Vec::with_capacity(bytes + extra), ends: Vec::with_capacity(count + 1) };
        for p in parts {
            let (off, base) = (p.run.start(p.lo) as u32, run.bytes.len() as u32);
            run.bytes.extend_from_slice(p.as_ref());
            run.ends.extend(p.run.ends[p.lo..p.hi].iter().map(|e| e - off + base));
        }
        run
    }

    fn push(&mut self, e: &Entry) -> usize {
        let before = self.bytes.len();
        crate::bytes::encode_into(e, &mut self.bytes);
        assert!(self.bytes.len() <= u32::MAX as usize, "a log image over 4 GiB");
        self.ends.push(self.bytes.len() as u32);
        self.bytes.len() - before
    }
}

/// Consecutive encoded entries: a view on a shared, immutable run of them. Shared between
/// the live log and saved images.
#[derive(Clone, Debug, Default)]
pub struct EntryChunk {
    run: Rc<Run>,
    /// The view holds entries `lo..hi` of `run`.
    lo: usize,
    hi: usize,
}

impl EntryChunk {
    fn whole(run: Run) -> Self {
        let hi = run.len();
        EntryChunk { run: Rc::new(run), lo: 0, hi }
    }

    fn len(&self) -> usize {
        self.hi - self.lo
    }

    fn byte_range(&self) -> Range<usize> {
        self.run.start(self.lo)..self.run.start(self.hi)
    }

    fn byte_len(&self) -> usize {
        let r = self.byte_range();
        r.end - r.start
    }

    /// Entries `lo..hi` of this view (relative to it). A view that would keep less than half
    /// of its run alive gets a run of its own instead, so cut-off entries are freed; the copy
    /// costs at most what was cut off.
    fn slice(&self, lo: usize, hi: usize) -> EntryChunk {
        assert!(lo <= hi && hi <= self.len());
        let v = EntryChunk { run: self.run.clone(), lo: self.lo + lo, hi: self.lo + hi };
        if 2 * v.len() < v.run.len() {
            EntryChunk::whole(Run::concat(&[&v], 0))
        } else {
            v
        }
    }
}

impl AsRef<[u8]> for EntryChunk {
    fn as_ref(&self) -> &[u8] {
        &self.run.bytes[self.byte_range()]
    }
}

/// Views are equal when they hold the same bytes, however they are laid out.
impl PartialEq for EntryChunk {
    fn eq(&self, other: &Self) -> bool {
        self.as_ref() == other.as_ref()
    }
}

impl Eq for EntryChunk {}

/// The log's entries, encoded: sealed segments of complete chunks, then the tail chunk.
#[derive(Clone, Debug)]
pub(crate) struct EntryImage {
    /// Complete chunks, front to back, in segments; each segment is more than twice the
    /// size of the next one, unless a compaction cut the first.
    sealed: Vec<Rc<EntryChunk>>,
    /// The last chunk (1 to `CHUNK` entries); `None` when the image is empty.
    tail: Option<Rc<EntryChunk>>,
    /// Entries in the first chunk while it is sealed (fewer than `CHUNK` only after the front
    /// of the log was compacted away); `CHUNK` while the first chunk is the tail.
    first_len: usize,
    count: usize,
    bytes: usize,
}

impl Default for EntryImage {
    fn default() -> Self {
        EntryImage { sealed: Vec::new(), tail: None, first_len: CHUNK, count: 0, bytes: 0 }
    }
}

/// Images are equal when they hold the same entries' bytes.
impl PartialEq for EntryImage {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.bytes == other.bytes && self.to_bytes() == other.to_bytes()
    }
}

impl Eq for EntryImage {}

impl EntryImage {
    pub(crate) fn from_entries(entries: &[Entry]) -> Self {
        let mut run = Run::default();
        for e in entries {
            run.push(e);
        }
        let all = EntryChunk::whole(run);
        let mut image = EntryImage { count: all.len(), bytes: all.byte_len(), ..EntryImage::default() };
        if image.count > 0 {
            let tail_start = (image.count - 1) / CHUNK * CHUNK;
            if tail_start > 0 {
                image.sealed.push(Rc::new(all.slice(0, tail_start)));
            }
            image.tail = Some(Rc::new(EntryChunk::whole(Run::concat(&[&all.slice(tail_start, all.len())], 0))));
        }
        image.check();
        image
    }

    fn tail_len(&self) -> usize {
        self.tail.as_ref().map_or(0, |t| t.len())
    }

    /// The image index of the tail's first entry.
    fn tail_start(&self) -> usize {
        self.count - self.tail_len()
    }

    /// The first entry of the chunk that holds entry `i`.
    fn chunk_start(&self, i: usize) -> usize {
        if i < self.first_len {
            0
        } else {
            self.first_len + (i - self.first_len) / CHUNK * CHUNK
        }
    }

    /// The sealed segment holding entry `i` (which must be sealed), and its first entry.
    fn locate_sealed(&self, i: usize) -> (usize, usize) {
        let mut start = 0;
        for (k, s) in self.sealed.iter().enumerate() {
            if i < start + s.len() {
                return (k, start);
            }
            start += s.len();
        }
        panic!("entry {i} is not sealed");
    }

    /// The tail's run, to change in place: copied first (with room for `extra` bytes) unless
    /// no save shares it. Call `tail_changed` afterwards.
    fn tail_run(&mut self, extra: usize) -> &mut Run {
        let tail = self.tail.get_or_insert_with(Rc::default);
        let unique = match Rc::get_mut(tail) {
            Some(v) => v.lo == 0 && v.hi == v.run.len() && Rc::get_mut(&mut v.run).is_some(),
            None => false,
        };
        if !unique {
            *tail = Rc::new(EntryChunk::whole(Run::concat(&[&**tail], extra)));
        }
        let v = Rc::get_mut(tail).expect("the tail was just made unique");
        Rc::get_mut(&mut v.run).expect("the tail's run was just made unique")
    }

    /// After `tail_run`: the tail view covers its whole run again.
    fn tail_changed(&mut self) {
        let tail = Rc::get_mut(self.tail.as_mut().expect("a tail")).expect("the tail is unique");
        tail.hi = tail.run.len();
        if tail.hi == 0 {
            self.tail = None;
        }
    }

    pub(crate) fn push(&mut self, e: &Entry) {
        if self.tail_len() == CHUNK {
            self.seal_tail();
        }
        // Room for one more entry of about the average size: a save usually follows, and
        // the next append copies the tail again.
        let extra = self.tail.as_ref().map_or(0, |t| t.byte_len() / t.len().max(1)) + 16;
        let added = self.tail_run(extra).push(e);
        self.tail_changed();
        self.count += 1;
        self.bytes += added;
        self.check();
    }

    /// Moves the full tail into the sealed segments, merging the last ones while a segment
    /// is not more than twice the size of the one after it: O(log n) segments, and each entry
    /// is copied O(log n) times over the log's life.
    fn seal_tail(&mut self) {
        let tail = self.tail.take().expect("a full tail");
        if self.sealed.is_empty() {
            self.first_len = CHUNK;
        }
        self.sealed.push(tail);
        while self.sealed.len() >= 2 {
            let n = self.sealed.len();
            let (a, b) = (&self.sealed[n - 2], &self.sealed[n - 1]);
            if a.len() > 2 * b.len() {
                break;
            }
            let merged = Rc::new(EntryChunk::whole(Run::concat(&[a, b], 0)));
            self.sealed.truncate(n - 2);
            self.sealed.push(merged);
        }
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
        // The chunk holding the last kept entry becomes the tail.
        let s = self.chunk_start(keep - 1);
        let tail_start = self.tail_start();
        if s >= tail_start {
            debug_assert_eq!(s, tail_start);
            let run = self.tail_run(0);
            let cut = run.start(keep - s);
            run.bytes.truncate(cut);
            run.ends.truncate(keep - s);
            self.tail_changed();
        } else {
            let (k, seg_start) = self.locate_sealed(s);
            let seg = self.sealed[k].clone();
            let tail = Run::concat(&[&seg.slice(s - seg_start, keep - seg_start)], 0);
            self.sealed.truncate(k);
            if s > seg_start {
                self.sealed.push(Rc::new(seg.slice(0, s - seg_start)));
            }
            self.tail = Some(Rc::new(EntryChunk::whole(tail)));
        }
        if s == 0 {
            self.first_len = CHUNK;
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
        let tail_start = self.tail_start();
        if n >= tail_start {
            self.sealed.clear();
            let tail = self.tail.as_ref().expect("entries past n");
            let rest = Run::concat(&[&tail.slice(n - tail_start, tail.len())], 0);
            self.tail = Some(Rc::new(EntryChunk::whole(rest)));
            self.first_len = CHUNK;
        } else {
            // The chunk holding entry n, from n on, becomes the first chunk.
            let next_boundary = self.chunk_start(n) + if n < self.first_len { self.first_len } else { CHUNK };
            let (k, seg_start) = self.locate_sealed(n);
            self.sealed.drain(..k);
            if n > seg_start {
                let seg = self.sealed[0].clone();
                self.sealed[0] = Rc::new(seg.slice(n - seg_start, seg.len()));
            }
            self.first_len = next_boundary - n;
        }
        self.recount();
    }

    /// Replaces entry `i` in place (only a planted bug does this: it may copy a segment).
    pub(crate) fn replace(&mut self, i: usize, e: &Entry) {
        let tail_start = self.tail_start();
        let (old, k, at) = if i >= tail_start {
            (self.tail.clone().expect("entry i exists"), None, i - tail_start)
        } else {
            let (k, seg_start) = self.locate_sealed(i);
            (self.sealed[k].clone(), Some(k), i - seg_start)
        };
        let mut run = Run::concat(&[&old.slice(0, at)], 0);
        run.push(e);
        let rest = old.slice(at + 1, old.len());
        let run = Run::concat(&[&EntryChunk::whole(run), &rest], 0);
        let new = Rc::new(EntryChunk::whole(run));
        match k {
            Some(k) => self.sealed[k] = new,
            None => self.tail = Some(new),
        }
        self.recount();
    }

    fn recount(&mut self) {
        let (count, bytes) =
            self.sealed.iter().chain(self.tail.iter()).fold((0, 0), |(n, b), c| (n + c.len(), b + c.byte_len()));
        (self.count, self.bytes) = (count, bytes);
        self.check();
    }

    /// The layout's invariants (cheap: O(segments)).
    fn check(&self) {
        debug_assert!(self.tail.as_ref().is_none_or(|t| (1..=CHUNK).contains(&t.len())), "tail of 1..=CHUNK entries");
        debug_assert!(self.tail.is_some() || (self.count == 0 && self.sealed.is_empty()), "sealed chunks need a tail");
        debug_assert!((1..=CHUNK).contains(&self.first_len));
        debug_assert!(
            !self.sealed.is_empty() || self.first_len == CHUNK,
            "a first chunk that is the tail fills to CHUNK"
        );
        debug_assert_eq!(
            self.sealed.iter().map(|s| s.len()).sum::<usize>(),
            self.tail_start(),
            "sealed segments hold every entry before the tail"
        );
        debug_assert!(
            self.tail_start() == 0 || self.chunk_start(self.tail_start()) == self.tail_start(),
            "the tail starts on a chunk boundary"
        );
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The parts, front to back: sealed segments, then the tail.
    fn parts(&self) -> Vec<Rc<EntryChunk>> {
        let mut v = Vec::with_capacity(self.sealed.len() + 1);
        v.extend(self.sealed.iter().cloned());
        v.extend(self.tail.iter().cloned());
        v
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.bytes);
        for p in self.sealed.iter().chain(self.tail.iter()) {
            v.extend_from_slice((**p).as_ref());
        }
        v
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
        // At most five varints: encode on the stack, then allocate once, exactly.
        let mut buf = [0u8; 64];
        let header = postcard::to_slice(
            &Header { current_term, voted_for, snapshot_index, snapshot_term, entries: log.count },
            &mut buf,
        )
        .expect("a header encodes")
        .to_vec();
        let len = header.len() + log.bytes;
        StateImage { header, chunks: log.parts(), len }
    }

    /// Size in bytes (the course's `RaftStateSize`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the image has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, in one piece (what restoring reads).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        v.extend_from_slice(&self.header);
        for c in &self.chunks {
            v.extend_from_slice((**c).as_ref());
        }
        v
    }

    /// The header, then the encoded entries in a few parts, for storage that shares them.
    /// The last part is always the log's last chunk of up to `CHUNK` entries (counted in chunks
    /// of `CHUNK` from the front of the log, the first one shorter after a compaction).
    pub fn parts(&self) -> (&[u8], &[Rc<EntryChunk>]) {
        (&self.header, &self.chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::super::persist;
    use super::*;
    use proptest::prelude::*;

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

    /// The layout the trace's fingerprint was defined on: chunks of at most `CHUNK` encoded
    /// entries, a new chunk when the last is full, truncation and compaction cutting
    /// chunks in place. The image's last part must always be this model's last chunk.
    #[derive(Default)]
    struct ChunkModel(Vec<Vec<Vec<u8>>>);

    impl ChunkModel {
        fn locate(&self, mut i: usize) -> (usize, usize) {
            for (k, c) in self.0.iter().enumerate() {
                if i < c.len() {
                    return (k, i);
                }
                i -= c.len();
            }
            unreachable!()
        }
        fn count(&self) -> usize {
            self.0.iter().map(|c| c.len()).sum()
        }
        fn push(&mut self, e: &Entry) {
            if self.0.last().is_none_or(|c| c.len() >= CHUNK) {
                self.0.push(Vec::new());
            }
            self.0.last_mut().unwrap().push(postcard::to_allocvec(e).unwrap());
        }
        fn truncate(&mut self, keep: usize) {
            if keep >= self.count() {
                return;
            }
            if keep == 0 {
                self.0.clear();
                return;
            }
            let (k, i) = self.locate(keep);
            self.0.truncate(k + 1);
            if i == 0 {
                self.0.pop();
            } else {
                self.0[k].truncate(i);
            }
        }
        fn drop_front(&mut self, n: usize) {
            if n >= self.count() {
                self.0.clear();
                return;
            }
            let (k, i) = self.locate(n);
            self.0.drain(..k);
            self.0[0].drain(..i);
        }
        fn replace(&mut self, i: usize, e: &Entry) {
            let (k, j) = self.locate(i);
            self.0[k][j] = postcard::to_allocvec(e).unwrap();
        }
        fn last_chunk(&self) -> Option<Vec<u8>> {
            self.0.last().map(|c| c.concat())
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(usize),
        Truncate(usize),
        DropFront(usize),
        Replace(usize),
        Save,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            20 => (0usize..40).prop_map(Op::Push),
            2 => (0usize..400).prop_map(Op::Truncate),
            2 => (0usize..200).prop_map(Op::DropFront),
            1 => (0usize..400).prop_map(Op::Replace),
            6 => Just(Op::Save),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Through any sequence of changes: the bytes equal a full encoding, the last part is
        /// the old layout's last chunk (what the trace fingerprints), a save keeps its bytes,
        /// and a save has O(log n) parts.
        #[test]
        fn image_keeps_bytes_last_chunk_and_few_parts(ops in proptest::collection::vec(op(), 1..400)) {
            let mut entries: Vec<Entry> = Vec::new();
            let mut image = EntryImage::default();
            let mut model = ChunkModel::default();
            let mut saves: Vec<(StateImage, Vec<u8>)> = Vec::new();
            let mut term = 1;
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(n) => {
                        for _ in 0..n {
                            let x = e(term, step + entries.len());
                            image.push(&x);
                            model.push(&x);
                            entries.push(x);
                        }
                        term += 1;
                    }
                    Op::Truncate(keep) => {
                        let keep = keep.min(entries.len());
                        entries.truncate(keep);
                        image.truncate(keep);
                        model.truncate(keep);
                    }
                    Op::DropFront(n) => {
                        let n = n.min(entries.len());
                        entries.drain(..n);
                        image.drop_front(n);
                        model.drop_front(n);
                    }
                    Op::Replace(i) if !entries.is_empty() => {
                        let i = i % entries.len();
                        entries[i] = e(term, 3 * step);
                        image.replace(i, &entries[i]);
                        model.replace(i, &entries[i]);
                    }
                    Op::Replace(_) => {}
                    Op::Save => {
                        let s = StateImage::new(term, Some(2), 5, 1, &image);
                        let b = s.to_bytes();
                        saves.push((s, b));
                    }
                }
                let img = StateImage::new(term, None, 9, 4, &image);
                prop_assert_eq!(img.to_bytes(), persist::encode(term, None, 9, 4, &entries));
                prop_assert_eq!(img.len(), img.to_bytes().len());
                prop_assert_eq!(image.count(), entries.len());
                let (_, parts) = img.parts();
                prop_assert_eq!(parts.last().map(|p| (**p).as_ref().to_vec()), model.last_chunk());
                let chunks = entries.len().div_ceil(CHUNK);
                prop_assert!(parts.len() <= 2 * (usize::BITS - chunks.leading_zeros()) as usize + 2,
                    "{} parts for {} chunks", parts.len(), chunks);
            }
            for (s, b) in saves {
                prop_assert_eq!(s.to_bytes(), b);
            }
        }
    }
}
