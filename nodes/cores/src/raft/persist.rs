//! The persisted Raft state (term, vote, log) and its compact postcard encoding.

use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;

use super::messages::Entry;

/// Borrowing form used to encode without cloning the log. The live code saves through
/// `StateImage`, whose bytes must equal this encoding; tests compare the two.
#[cfg(test)]
#[derive(Serialize)]
struct PersistentStateRef<'a> {
    current_term: u64,
    voted_for: Option<usize>,
    snapshot_index: u64,
    snapshot_term: u64,
    log: &'a [Entry],
}

/// Owning form produced by decoding; field order must match [`PersistentStateRef`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct PersistentState {
    pub(crate) current_term: u64,
    pub(crate) voted_for: Option<usize>,
    pub(crate) snapshot_index: u64,
    pub(crate) snapshot_term: u64,
    pub(crate) log: Vec<Entry>,
}

pub use crate::replica::RestoreError;

#[cfg(test)]
pub(crate) fn encode(
    current_term: u64,
    voted_for: Option<usize>,
    snapshot_index: u64,
    snapshot_term: u64,
    log: &[Entry],
) -> Vec<u8> {
    let state = PersistentStateRef { current_term, voted_for, snapshot_index, snapshot_term, log };
    // Encoding plain integers and byte vectors into a Vec cannot fail.
    postcard::to_allocvec(&state).expect("postcard encodes Raft state")
}

/// Decode what [`encode`] produced; empty bytes mean a peer that never saved anything.
pub(crate) fn decode(bytes: &[u8]) -> Result<PersistentState, RestoreError> {
    if bytes.is_empty() {
        return Ok(PersistentState::default());
    }
    postcard::from_bytes(bytes).map_err(|e| RestoreError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_stays_small() {
        let log = vec![Entry { term: 3, command: vec![1, 2, 3] }, Entry { term: 4, command: vec![] }];
        let bytes = encode(4, Some(2), 10, 3, &log);
        // A varint encoding: a few bytes of header plus the commands themselves.
        assert!(bytes.len() < 16, "{} bytes", bytes.len());
        let state = decode(&bytes).unwrap();
        assert_eq!(state.current_term, 4);
        assert_eq!(state.voted_for, Some(2));
        assert_eq!((state.snapshot_index, state.snapshot_term), (10, 3));
        assert_eq!(state.log, log);
        assert_eq!(decode(&[]).unwrap(), PersistentState::default());
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
