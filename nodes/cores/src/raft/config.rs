//! Configuration of one Raft peer, including the switches for planted bugs.

use serde::{Deserialize, Serialize};

/// Everything a peer needs to know before it starts; all times in simulated milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// This peer's id, in `0..peers`.
    pub me: usize,
    /// Number of peers in the cluster, this one included.
    pub peers: usize,
    /// Seed of the peer's private election-jitter generator. The core mixes `me` into it, so
    /// peers given the same seed still draw different timeouts; give a restarted peer a fresh
    /// seed (for example the scenario seed plus an incarnation count) or it replays the
    /// timeouts of its previous life.
    pub seed: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_ms_min: u64,
    /// Upper bound (inclusive) of the randomized election timeout.
    pub election_timeout_ms_max: u64,
    /// A leader contacts each follower at least this often; the course allows at most ten
    /// heartbeats per second.
    pub heartbeat_interval_ms: u64,
    /// Bound on entries carried by one AppendEntries, so a lagging follower is caught up in
    /// bounded messages rather than one message holding the whole log.
    pub max_entries_per_append: usize,
    /// When a leader's `commit_index` advances, send each idle follower an AppendEntries at
    /// once so it applies promptly (`true`), or let the next AppendEntries, entries or
    /// heartbeat, carry the news (`false`, the default, as the paper's §5.3 describes). The
    /// default nearly halves the messages of a client that waits on each write (only the
    /// leader answers clients); followers then apply up to a heartbeat interval later. The
    /// swarms draw both; the property tests keep `true`.
    #[serde(default)]
    pub commit_news_at_once: bool,
    /// A candidate whose RequestVote to a peer failed (lost request or reply, peer down or
    /// unreachable) sends it again at once while it is still a candidate of that term and
    /// has no vote from that peer (`true`), or leaves the peer to the next election (`false`,
    /// the default). The paper's §5.1 has servers retry RPCs that get no timely response,
    /// and many course solutions retry votes in a loop; the retry is what lets a voter that
    /// restarted between two candidates' requests of one term be asked again in that term.
    /// Bounded by the election timeout: a new term stops the retries of the old. The swarms
    /// draw both; the property tests and course scenarios keep the default.
    #[serde(default)]
    pub retry_failed_votes: bool,
    /// Planted bugs; all off in a correct build.
    pub bugs: Bugs,
}

impl Config {
    /// Defaults sized for the 6.824 tests: heartbeats every 100 ms (≤ 10/s, 20 RPCs per idle
    /// second on 3 servers against the bound of 60) and elections after 300–600 ms, which
    /// leaves room for several election rounds inside the 5 s re-election bound even when
    /// 19 % of round trips fail.
    ///
    /// # Panics
    /// If `peers` is 0 or `me` is not below `peers`.
    pub fn new(me: usize, peers: usize, seed: u64) -> Config {
        assert!(peers >= 1, "a cluster needs at least one peer");
        assert!(me < peers, "peer id {me} out of range for {peers} peers");
        Config {
            me,
            peers,
            seed,
            election_timeout_ms_min: 300,
            election_timeout_ms_max: 600,
            heartbeat_interval_ms: 100,
            max_entries_per_append: 100,
            commit_news_at_once: false,
            retry_failed_votes: false,
            bugs: Bugs::default(),
        }
    }

    /// The same configuration with `bugs` planted.
    pub fn with_bugs(mut self, bugs: Bugs) -> Config {
        self.bugs = bugs;
        self
    }
}

/// One planted bug: a small switch inside the real code path, used to show that the checkers
/// and test harnesses can find the class of mistake it represents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Bug {
    /// A leader commits an entry of an earlier term by counting replicas (Figure 8 of the paper).
    CommitOldTerm,
    /// `voted_for` is left out of the persisted state, so a restarted peer can vote twice in a term.
    NoPersistVotedFor,
    /// `current_term` is left out of the persisted state and recovered from the last log entry.
    NoPersistTerm,
    /// Votes are granted without checking that the candidate's log is at least as up to date.
    VoteWithoutUpToDateCheck,
    /// A conflicting entry is overwritten in place and the rest of the old suffix is kept.
    NoTruncateConflict,
    /// AppendEntries from a leader of an older term is processed instead of rejected.
    AcceptStaleTermAppend,
    /// A snapshot not newer than what was applied is installed, rewinding the service and
    /// re-applying commands after it.
    ApplyOutOfOrderAfterSnapshot,
    /// A leader acts on an AppendEntries reply that answers a request it sent in an earlier
    /// term of its own (before it lost and regained leadership), counting a stale success.
    StaleAppendReply,
    /// InstallSnapshot drops the follower's entries after the snapshot even when they
    /// continue it (same index and term at the snapshot's last entry).
    SnapshotWipesLog,
    /// A follower acknowledges appended entries before they are durable: the reply leaves
    /// before the save that holds them.
    AckBeforeDurable,
}

impl Bug {
    /// Every planted bug, in a fixed order.
    pub fn all() -> &'static [Bug] {
        &[
            Bug::CommitOldTerm,
            Bug::NoPersistVotedFor,
            Bug::NoPersistTerm,
            Bug::VoteWithoutUpToDateCheck,
            Bug::NoTruncateConflict,
            Bug::AcceptStaleTermAppend,
            Bug::ApplyOutOfOrderAfterSnapshot,
            Bug::StaleAppendReply,
            Bug::SnapshotWipesLog,
            Bug::AckBeforeDurable,
        ]
    }

    /// The kebab-case name used on the command line and in saved seeds.
    pub fn name(self) -> &'static str {
        match self {
            Bug::CommitOldTerm => "commit-old-term",
            Bug::NoPersistVotedFor => "no-persist-voted-for",
            Bug::NoPersistTerm => "no-persist-term",
            Bug::VoteWithoutUpToDateCheck => "vote-without-up-to-date-check",
            Bug::NoTruncateConflict => "no-truncate-conflict",
            Bug::AcceptStaleTermAppend => "accept-stale-term-append",
            Bug::ApplyOutOfOrderAfterSnapshot => "apply-out-of-order-after-snapshot",
            Bug::StaleAppendReply => "stale-append-reply",
            Bug::SnapshotWipesLog => "snapshot-wipes-log",
            Bug::AckBeforeDurable => "ack-before-durable",
        }
    }

    /// The bug called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::all().iter().copied().find(|bug| bug.name() == name)
    }

    /// One line saying what the bug does.
    pub fn description(self) -> &'static str {
        match self {
            Bug::CommitOldTerm => "a leader commits an entry of an earlier term once a majority stores it (Figure 8)",
            Bug::NoPersistVotedFor => "voted_for is not persisted, so a restarted peer may vote twice in one term",
            Bug::NoPersistTerm => "current_term is not persisted; a restarted peer recovers it from its last log entry",
            Bug::VoteWithoutUpToDateCheck => {
                "votes are granted without the election restriction (candidate's log up to date)"
            }
            Bug::NoTruncateConflict => "a conflicting entry is overwritten in place, keeping the stale suffix after it",
            Bug::AcceptStaleTermAppend => {
                "AppendEntries from a leader of an older term is accepted instead of rejected"
            }
            Bug::ApplyOutOfOrderAfterSnapshot => {
                "a snapshot older than the applied state is installed, so commands re-apply out of order"
            }
            Bug::StaleAppendReply => {
                "a leader counts an append success answering a request of an earlier term of its own"
            }
            Bug::SnapshotWipesLog => "InstallSnapshot drops the follower's entries after it even when they continue it",
            Bug::AckBeforeDurable => "a follower acknowledges appended entries before saving them",
        }
    }
}

impl std::fmt::Display for Bug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of planted bugs switched on for one peer; `Bugs::default()` is a correct peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bugs {
    /// [`Bug::CommitOldTerm`]: breaks the rule of Raft §5.4.2 (Figure 8).
    pub commit_old_term: bool,
    /// [`Bug::NoPersistVotedFor`]: breaks Figure 2's persistent state (Raft §5.2, one vote per term).
    pub no_persist_voted_for: bool,
    /// [`Bug::NoPersistTerm`]: breaks Figure 2's persistent state (`current_term`).
    pub no_persist_term: bool,
    /// [`Bug::VoteWithoutUpToDateCheck`]: drops the election restriction of Raft §5.4.1.
    pub vote_without_up_to_date_check: bool,
    /// [`Bug::NoTruncateConflict`]: breaks AppendEntries step 3 of Figure 2 (Raft §5.3).
    pub no_truncate_conflict: bool,
    /// [`Bug::AcceptStaleTermAppend`]: breaks AppendEntries step 1 of Figure 2.
    pub accept_stale_term_append: bool,
    /// [`Bug::ApplyOutOfOrderAfterSnapshot`]: installs a stale snapshot (Raft §7, InstallSnapshot
    /// step 6 of Figure 13; 6.824 lab 2D's in-order apply).
    pub apply_out_of_order_after_snapshot: bool,
    /// [`Bug::StaleAppendReply`]: drops the term check on replies (a reply counts only for the
    /// term of its request; Raft §5.1, "stale term" messages).
    pub stale_append_reply: bool,
    /// [`Bug::SnapshotWipesLog`]: breaks InstallSnapshot step 6 of Figure 13 (retain the
    /// entries following the snapshot when the log has its last entry).
    pub snapshot_wipes_log: bool,
    /// [`Bug::AckBeforeDurable`]: breaks Figure 2's rule that persistent state is updated on
    /// stable storage before responding to RPCs.
    pub ack_before_durable: bool,
}

impl Bugs {
    /// Exactly one bug switched on.
    pub fn only(bug: Bug) -> Bugs {
        let mut bugs = Bugs::default();
        bugs.set(bug, true);
        bugs
    }

    /// Switch `bug` on or off.
    pub fn set(&mut self, bug: Bug, on: bool) {
        *self.flag_mut(bug) = on;
    }

    /// Whether `bug` is switched on.
    pub fn has(&self, bug: Bug) -> bool {
        match bug {
            Bug::CommitOldTerm => self.commit_old_term,
            Bug::NoPersistVotedFor => self.no_persist_voted_for,
            Bug::NoPersistTerm => self.no_persist_term,
            Bug::VoteWithoutUpToDateCheck => self.vote_without_up_to_date_check,
            Bug::NoTruncateConflict => self.no_truncate_conflict,
            Bug::AcceptStaleTermAppend => self.accept_stale_term_append,
            Bug::ApplyOutOfOrderAfterSnapshot => self.apply_out_of_order_after_snapshot,
            Bug::StaleAppendReply => self.stale_append_reply,
            Bug::SnapshotWipesLog => self.snapshot_wipes_log,
            Bug::AckBeforeDurable => self.ack_before_durable,
        }
    }

    /// The bugs switched on, in `Bug::all()` order.
    pub fn enabled(&self) -> Vec<Bug> {
        Bug::all().iter().copied().filter(|bug| self.has(*bug)).collect()
    }

    /// Whether no bug is switched on.
    pub fn is_empty(&self) -> bool {
        self.enabled().is_empty()
    }

    fn flag_mut(&mut self, bug: Bug) -> &mut bool {
        match bug {
            Bug::CommitOldTerm => &mut self.commit_old_term,
            Bug::NoPersistVotedFor => &mut self.no_persist_voted_for,
            Bug::NoPersistTerm => &mut self.no_persist_term,
            Bug::VoteWithoutUpToDateCheck => &mut self.vote_without_up_to_date_check,
            Bug::NoTruncateConflict => &mut self.no_truncate_conflict,
            Bug::AcceptStaleTermAppend => &mut self.accept_stale_term_append,
            Bug::ApplyOutOfOrderAfterSnapshot => &mut self.apply_out_of_order_after_snapshot,
            Bug::StaleAppendReply => &mut self.stale_append_reply,
            Bug::SnapshotWipesLog => &mut self.snapshot_wipes_log,
            Bug::AckBeforeDurable => &mut self.ack_before_durable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_names_round_trip_and_are_kebab_case() {
        for &bug in Bug::all() {
            assert_eq!(Bug::from_name(bug.name()), Some(bug));
            assert!(bug.name().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            assert!(!bug.description().is_empty());
            let bugs = Bugs::only(bug);
            assert_eq!(bugs.enabled(), vec![bug]);
        }
        assert_eq!(Bug::from_name("no-such-bug"), None);
        assert!(Bugs::default().is_empty());
    }
}
