//! Raft safety properties over plain observations (in progress).
