//! The run's trace: one event per send, delivery, drop, hold, release, duplicate, timer,
//! crash, restart, client call/return, fault, persist and file operation.
//!
//! Every event's structured fields (time, kind, node, up to three integers) are folded
//! into a running 64-bit hash; the human-readable line is formatted only when a trace is
//! asked for (replay, determinism), so sweeps pay a few nanoseconds per event.
//! The line format is documented in ARCHITECTURE.md:
//!
//! ```text
//!     12.345678s s2         send     #17 s2->s0 req call=9 40B h=3f2a9c1e
//! ```

use crate::rng::mix64;

/// What happened. The discriminant is part of the trace hash: append new kinds at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// A message left its sender.
    Send = 0,
    /// A message reached its destination.
    Deliver = 1,
    /// A message was lost (unreliable network, cut link, dead or unreachable peer).
    Drop = 2,
    /// A message was held by a clog.
    Hold = 3,
    /// A held message was released.
    Release = 4,
    /// A message was duplicated by the network.
    Dup = 5,
    /// An RPC call failed (the caller sees `false`, as labrpc's Call returns it).
    Fail = 6,
    /// A node's timer fired.
    Timer = 7,
    /// A node crashed (its tasks ended, its in-flight work discarded).
    Crash = 8,
    /// A node restarted from what it had persisted.
    Restart = 9,
    /// A node's process exited by itself.
    Exit = 10,
    /// A client called an operation.
    Call = 11,
    /// A client's operation returned.
    Return = 12,
    /// The scenario changed the world: partition, heal, cut, clog, loss rate...
    Fault = 13,
    /// A node saved its persistent state.
    Persist = 14,
    /// A file-system operation.
    Fs = 15,
    /// A protocol-level note from a node (became leader, applied, ...).
    Note = 16,
    /// A checker's observation or verdict.
    Check = 17,
}

impl Kind {
    /// The family name shown in trace lines and used as a `tracing` target (`send`, `fault`, …).
    pub fn label(self) -> &'static str {
        match self {
            Kind::Send => "send",
            Kind::Deliver => "deliver",
            Kind::Drop => "drop",
            Kind::Hold => "hold",
            Kind::Release => "release",
            Kind::Dup => "dup",
            Kind::Fail => "fail",
            Kind::Timer => "timer",
            Kind::Crash => "crash",
            Kind::Restart => "restart",
            Kind::Exit => "exit",
            Kind::Call => "call",
            Kind::Return => "return",
            Kind::Fault => "fault",
            Kind::Persist => "persist",
            Kind::Fs => "fs",
            Kind::Note => "note",
            Kind::Check => "check",
        }
    }
}

/// How much of the trace a run keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TraceMode {
    /// Hash only (sweeps).
    #[default]
    Hash,
    /// Keep every line in memory (determinism checks).
    Capture,
    /// Emit every line through `tracing` (replay), filtered by the installed subscriber.
    Emit,
}

/// One captured event: what the trace hash folds in (time, kind, node, fields), its own
/// hash, and its line. Tools read the structured part (the shrinker reads saves, calls and
/// crash-point firings from it, through decoders beside the code that records each:
/// [`crate::history::call_client`], [`crate::fault_point_fired`]); the line is for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedEvent {
    /// When it happened, in simulated nanoseconds since the run started.
    pub at_ns: u64,
    /// What happened.
    pub kind: Kind,
    /// The node it happened at (an index into [`crate::RunReport::node_names`]), if any.
    pub node: Option<u16>,
    /// The kind's structured fields, as hashed.
    pub fields: [u64; 3],
    /// The event's own hash, of its time, kind, node and structured fields (not of its line).
    pub hash: u64,
    /// The event as text, for people.
    pub line: String,
}

/// The running trace of one run.
#[derive(Debug, Default)]
pub struct Trace {
    mode: TraceMode,
    hash: u64,
    events: u64,
    captured: Vec<CapturedEvent>,
}

/// Hashes a byte string (message payloads, file contents, saved state) into one trace field,
/// with the fixed hasher the history fields use
/// ([`FixedHasher`](checkers::linearizability::hash::FixedHasher)). Its four independent
/// lanes over long inputs matter here: one chain of dependent multiplications over every
/// message and every save was 3 % of a key/value run's wall time.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = checkers::linearizability::hash::FixedHasher::default();
    h.write(bytes);
    h.finish()
}

/// What a trace note says. A note's code is hashed into the trace, so each meaning has a code
/// of its own, kept here in one place (two hand-picked integers once collided).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteCode {
    /// A replica's role or term changed (fields: term, role code).
    Role,
    /// A tester's step: a round of a course test, a configuration change it asks for.
    TesterStep,
    /// A tester's warning that is not a failure (the course prints it and goes on).
    TesterWarning,
    /// A client history was judged (field: its length).
    HistoryChecked,
    /// A swarm's liveness phase began: every fault stops.
    LivenessPhase,
    /// A targeted scenario restarted the server it is about.
    RestartedVoter,
    /// A fault event named no node when it fired and was skipped.
    FaultSkipped,
    /// A `crash_after_save` fault event was armed on the node its target resolved to (field:
    /// that node); the other kinds show their nodes in their own `fault` lines.
    FaultResolved,
    /// The scenario described itself (`sim::describe`; field: the line's hash).
    Describe,
    /// The shard controller tester began a part of a course test (TestBasic's and TestMulti's
    /// "Test: ..." lines).
    CtrlerPart,
    /// The sharded service's tester asked the controller to Join groups (field: how many).
    ShardJoin,
    /// The sharded service's tester asked the controller to Leave groups (field: how many).
    ShardLeave,
    /// A swarm asked the controller to Move a shard (field: the shard).
    ShardMove,
    /// A shard group took the next configuration through its log (fields: gid, number).
    GroupTookConfig,
    /// A shard group's per-shard views after applying an entry (fields: gid, configuration).
    GroupShardViews,
    /// A code a downstream crate picks for notes of its own protocol.
    User(u16),
}

impl NoteCode {
    /// The number hashed into the trace. The values of this project's notes predate the
    /// enum and are kept, so traces keep their meaning; `TesterWarning` got a code of its own
    /// (it shared `Role`'s).
    pub fn value(self) -> u64 {
        match self {
            NoteCode::Role => 1,
            NoteCode::TesterStep => 2,
            NoteCode::TesterWarning => 3,
            NoteCode::HistoryChecked => 0x11AE,
            NoteCode::LivenessPhase => 0x11FE,
            NoteCode::RestartedVoter => 0xA4E5,
            NoteCode::FaultSkipped => 0xFA17,
            NoteCode::FaultResolved => 0xFA18,
            NoteCode::Describe => 0xDE5C,
            NoteCode::CtrlerPart => 0x4A,
            NoteCode::ShardJoin => 0x5A10,
            NoteCode::ShardLeave => 0x5A11,
            NoteCode::ShardMove => 0x5A12,
            NoteCode::GroupTookConfig => 0x5A4D,
            NoteCode::GroupShardViews => 0x5A4E,
            NoteCode::User(n) => 0x1_0000 + u64::from(n),
        }
    }
}

/// A fingerprint of a possibly large byte string, for trace fields: up to 512 bytes it is
/// [`hash_bytes`] of the whole; beyond, its length, 64 strided 8-byte samples and its last
/// 8 bytes, so a multi-megabyte snapshot costs the same as a small one (a change between
/// samples goes unseen).
pub fn fingerprint_bytes(bytes: &[u8]) -> u64 {
    if bytes.len() <= 512 {
        return hash_bytes(bytes);
    }
    // The samples are gathered first and hashed in one go, which the hasher's lanes take
    // in parallel, rather than folded in one by one through a chain of dependent mixes.
    let (len, step) = (bytes.len(), bytes.len() / 64);
    let mut samples = [0u8; 8 * 66];
    samples[..8].copy_from_slice(&(len as u64).to_le_bytes());
    for i in 0..64 {
        let at = (i * step).min(len - 8);
        samples[8 * (i + 1)..8 * (i + 2)].copy_from_slice(&bytes[at..at + 8]);
    }
    samples[8 * 65..].copy_from_slice(&bytes[len - 8..]);
    hash_bytes(&samples)
}

/// Formats simulated nanoseconds as seconds with microsecond precision, right-aligned.
pub fn fmt_time(ns: u64) -> String {
    format!("{:>6}.{:06}s", ns / 1_000_000_000, (ns % 1_000_000_000) / 1_000)
}

impl Trace {
    /// An empty trace keeping what `mode` says.
    pub fn new(mode: TraceMode) -> Self {
        Trace { mode, hash: 0x7261_6674_7369_6d21, events: 0, captured: Vec::new() }
    }

    /// What this trace keeps.
    pub fn mode(&self) -> TraceMode {
        self.mode
    }

    /// Whether event lines are wanted at all (callers skip building details otherwise).
    pub fn wants_lines(&self) -> bool {
        self.mode != TraceMode::Hash
    }

    /// Folds one event into the hash and, when lines are wanted, formats and keeps or emits it.
    #[inline]
    pub fn record(&mut self, now_ns: u64, kind: Kind, node: u64, fields: [u64; 3], line: impl FnOnce() -> String) {
        let mut h = mix64(now_ns ^ ((kind as u64) << 56) ^ (node << 40));
        h = mix64(h ^ fields[0]);
        h = mix64(h ^ fields[1].rotate_left(21));
        h = mix64(h ^ fields[2].rotate_left(42));
        self.hash = mix64(self.hash ^ h).wrapping_add(self.events);
        self.events += 1;
        match self.mode {
            TraceMode::Hash => {}
            TraceMode::Capture => self.captured.push(CapturedEvent {
                at_ns: now_ns,
                kind,
                node: (node != crate::world::NO_NODE).then_some(node as u16),
                fields,
                hash: h,
                line: line(),
            }),
            TraceMode::Emit => emit(kind, &line()),
        }
    }

    /// The running hash of every event recorded so far, in order.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// How many events were recorded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Takes the captured events (with [`TraceMode::Capture`]), leaving none.
    pub fn take_captured(&mut self) -> Vec<CapturedEvent> {
        std::mem::take(&mut self.captured)
    }
}

/// Sends a line through `tracing`, under a target per event family so a `RUST_LOG`-style
/// filter (`sim::net=off,sim=info`) selects what a replay shows.
fn emit(kind: Kind, line: &str) {
    match kind {
        Kind::Send | Kind::Deliver | Kind::Drop | Kind::Hold | Kind::Release | Kind::Dup | Kind::Fail => {
            tracing::info!(target: "sim::net", "{line}")
        }
        Kind::Timer => tracing::info!(target: "sim::timer", "{line}"),
        Kind::Crash | Kind::Restart | Kind::Exit => tracing::info!(target: "sim::node", "{line}"),
        Kind::Call | Kind::Return => tracing::info!(target: "sim::client", "{line}"),
        Kind::Fault => tracing::info!(target: "sim::fault", "{line}"),
        Kind::Persist => tracing::info!(target: "sim::persist", "{line}"),
        Kind::Fs => tracing::info!(target: "sim::fs", "{line}"),
        Kind::Note => tracing::info!(target: "sim::note", "{line}"),
        Kind::Check => tracing::info!(target: "sim::check", "{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_codes_are_distinct() {
        let named = [
            NoteCode::Role,
            NoteCode::TesterStep,
            NoteCode::TesterWarning,
            NoteCode::HistoryChecked,
            NoteCode::LivenessPhase,
            NoteCode::RestartedVoter,
            NoteCode::FaultSkipped,
            NoteCode::FaultResolved,
            NoteCode::Describe,
            NoteCode::CtrlerPart,
            NoteCode::ShardJoin,
            NoteCode::ShardLeave,
            NoteCode::ShardMove,
            NoteCode::GroupTookConfig,
            NoteCode::GroupShardViews,
        ];
        let mut values: Vec<u64> = named.iter().map(|c| c.value()).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), named.len(), "two note kinds share a code");
        // User codes live above every named code, so a downstream note never means one of ours.
        assert!(named.iter().all(|c| c.value() < NoteCode::User(0).value()));
    }

    #[test]
    fn hash_depends_on_every_field_and_order() {
        let run = |evs: &[(u64, Kind, u64, [u64; 3])]| {
            let mut t = Trace::new(TraceMode::Hash);
            for &(at, k, n, f) in evs {
                t.record(at, k, n, f, String::new);
            }
            t.hash()
        };
        let base = [(1, Kind::Send, 2, [3, 4, 5]), (2, Kind::Deliver, 3, [3, 4, 5])];
        let h = run(&base);
        assert_eq!(h, run(&base));
        assert_ne!(h, run(&[(1, Kind::Send, 2, [3, 4, 6]), base[1]]));
        assert_ne!(h, run(&[(1, Kind::Send, 2, [3, 4, 5]), (3, Kind::Deliver, 3, [3, 4, 5])]));
        assert_ne!(h, run(&[base[1], base[0]]));
        assert_ne!(hash_bytes(b"hello world!"), hash_bytes(b"hello world?"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
    }

    #[test]
    fn fingerprints_see_length_samples_and_the_end() {
        let big: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let f = fingerprint_bytes(&big);
        assert_eq!(f, fingerprint_bytes(&big.clone()));
        let mut last = big.clone();
        *last.last_mut().unwrap() ^= 1;
        assert_ne!(f, fingerprint_bytes(&last), "the last byte is always seen");
        let mut first = big.clone();
        first[0] ^= 1;
        assert_ne!(f, fingerprint_bytes(&first), "the first sample starts at byte 0");
        assert_ne!(f, fingerprint_bytes(&big[..9_999]), "the length is seen");
        // Up to 512 bytes, every byte counts.
        let small = &big[..512];
        for i in [0, 100, 511] {
            let mut changed = small.to_vec();
            changed[i] ^= 0x80;
            assert_ne!(fingerprint_bytes(small), fingerprint_bytes(&changed), "byte {i}");
        }
    }

    #[test]
    fn capture_keeps_lines() {
        let mut t = Trace::new(TraceMode::Capture);
        t.record(5, Kind::Note, 0, [0; 3], || "x".into());
        let c = t.take_captured();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].line, "x");
        assert_eq!(fmt_time(1_234_567_890), "     1.234567s");
    }
}
