//! The replicated log with its compacted prefix: entries after a snapshot, addressed by Raft index.

use super::image::EntryImage;
use super::messages::Entry;

/// Log indexes start at 1; index 0 is the empty prefix, with term 0. Entries at or below
/// `snapshot_index` live only in the snapshot, whose last entry has `snapshot_term`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Log {
    snapshot_index: u64,
    snapshot_term: u64,
    /// `entries[i]` has index `snapshot_index + 1 + i`.
    entries: Vec<Entry>,
    /// The same entries encoded, kept in step so a save costs O(change) (see `image.rs`).
    image: EntryImage,
}

impl Log {
    pub(crate) fn from_parts(snapshot_index: u64, snapshot_term: u64, entries: Vec<Entry>) -> Log {
        let image = EntryImage::from_entries(&entries);
        Log { snapshot_index, snapshot_term, entries, image }
    }

    /// The encoded entries, for a save.
    pub(crate) fn image(&self) -> &EntryImage {
        &self.image
    }

    pub(crate) fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    pub(crate) fn snapshot_term(&self) -> u64 {
        self.snapshot_term
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    pub(crate) fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_term, |e| e.term)
    }

    /// The term of the entry at `index`, if the log still knows it (the snapshot's last entry
    /// counts; entries compacted before it do not).
    pub(crate) fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index {
            Some(self.snapshot_term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// The entry at `index`, if it is in the uncompacted part of the log.
    pub(crate) fn entry(&self, index: u64) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries.get(self.offset(index))
    }

    /// Up to `max` entries starting at `from` (which must be past the snapshot).
    pub(crate) fn slice_from(&self, from: u64, max: usize) -> &[Entry] {
        assert!(from > self.snapshot_index, "entries before {from} are compacted");
        let start = self.offset(from).min(self.entries.len());
        let end = start.saturating_add(max).min(self.entries.len());
        &self.entries[start..end]
    }

    pub(crate) fn append(&mut self, entry: Entry) {
        // Terms only grow along a log; appending a lower term means a caller skipped truncation.
        assert!(
            entry.term >= self.last_term(),
            "appending term {} after term {} at index {}",
            entry.term,
            self.last_term(),
            self.last_index()
        );
        self.image.push(&entry);
        self.entries.push(entry);
    }

    /// Replace the entry at `index` in place, keeping every entry after it. Only the planted
    /// bug `no-truncate-conflict` does this; correct code truncates then appends.
    pub(crate) fn overwrite(&mut self, index: u64, entry: Entry) {
        let offset = self.offset(index);
        self.image.replace(offset, &entry);
        self.entries[offset] = entry;
    }

    /// Drop every entry at `from` and after.
    pub(crate) fn truncate_from(&mut self, from: u64) {
        assert!(from > self.snapshot_index, "cannot truncate into the snapshot at {from}");
        let offset = self.offset(from);
        self.entries.truncate(offset);
        self.image.truncate(offset);
    }

    /// Forget entries up to and including `index`, which becomes the snapshot's last entry.
    pub(crate) fn compact_to(&mut self, index: u64) {
        assert!(index > self.snapshot_index && index <= self.last_index());
        let term = self.term_at(index).expect("compacting to an index the log holds");
        let drop = self.offset(index) + 1;
        self.entries.drain(..drop);
        self.image.drop_front(drop);
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    /// Discard the whole log in favour of a snapshot ending at (`index`, `term`).
    pub(crate) fn reset_to_snapshot(&mut self, index: u64, term: u64) {
        self.entries.clear();
        self.image = EntryImage::default();
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    /// The first index of the run of `term` entries that contains `at` (never below the first
    /// uncompacted index). Terms are non-decreasing along the log, so a binary search finds it.
    pub(crate) fn first_index_of_term(&self, term: u64, at: u64) -> u64 {
        let end = self.offset(at).min(self.entries.len());
        let first = self.entries[..end].partition_point(|e| e.term < term);
        self.snapshot_index + 1 + first as u64
    }

    /// The last index holding an entry of `term`, if the log (or its snapshot boundary) knows one.
    pub(crate) fn last_index_of_term(&self, term: u64) -> Option<u64> {
        let after = self.entries.partition_point(|e| e.term <= term);
        if after > 0 && self.entries[after - 1].term == term {
            Some(self.snapshot_index + after as u64)
        } else if self.snapshot_term == term && self.snapshot_index > 0 {
            Some(self.snapshot_index)
        } else {
            None
        }
    }

    fn offset(&self, index: u64) -> usize {
        (index - self.snapshot_index - 1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: u64) -> Entry {
        Entry { term, command: vec![term as u8] }
    }

    fn log_with_terms(snapshot_index: u64, snapshot_term: u64, terms: &[u64]) -> Log {
        Log::from_parts(snapshot_index, snapshot_term, terms.iter().map(|&t| entry(t)).collect())
    }

    #[test]
    fn indexes_are_offset_by_the_snapshot() {
        let log = log_with_terms(5, 2, &[2, 3, 3]);
        assert_eq!(log.last_index(), 8);
        assert_eq!(log.last_term(), 3);
        assert_eq!(log.term_at(4), None);
        assert_eq!(log.term_at(5), Some(2));
        assert_eq!(log.term_at(6), Some(2));
        assert_eq!(log.term_at(8), Some(3));
        assert_eq!(log.term_at(9), None);
        assert_eq!(log.slice_from(7, 10).len(), 2);
        assert_eq!(log.slice_from(9, 10).len(), 0);
        assert_eq!(log.slice_from(6, 1).len(), 1);
    }

    #[test]
    fn term_runs_are_found_by_binary_search() {
        let log = log_with_terms(0, 0, &[1, 1, 4, 4, 4, 5]);
        assert_eq!(log.first_index_of_term(4, 5), 3);
        assert_eq!(log.first_index_of_term(1, 2), 1);
        assert_eq!(log.last_index_of_term(4), Some(5));
        assert_eq!(log.last_index_of_term(1), Some(2));
        assert_eq!(log.last_index_of_term(2), None);
        assert_eq!(log.last_index_of_term(6), None);
        let compacted = log_with_terms(10, 3, &[4]);
        assert_eq!(compacted.last_index_of_term(3), Some(10));
        assert_eq!(compacted.first_index_of_term(4, 11), 11);
    }

    #[test]
    fn compaction_and_truncation_keep_indexes_stable() {
        let mut log = log_with_terms(0, 0, &[1, 1, 2, 2, 3]);
        log.compact_to(3);
        assert_eq!((log.snapshot_index(), log.snapshot_term()), (3, 2));
        assert_eq!(log.entry(4).map(|e| e.term), Some(2));
        log.truncate_from(5);
        assert_eq!(log.last_index(), 4);
        log.append(entry(6));
        assert_eq!(log.term_at(5), Some(6));
        log.reset_to_snapshot(20, 7);
        assert_eq!((log.last_index(), log.last_term()), (20, 7));
    }

    #[test]
    #[should_panic(expected = "appending term")]
    fn appending_a_lower_term_is_refused() {
        let mut log = log_with_terms(0, 0, &[3]);
        log.append(entry(2));
    }
}
