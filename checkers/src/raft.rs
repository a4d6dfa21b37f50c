//! Raft safety properties over plain observations, checked incrementally after every step.
//!
//! The observer reports what it sees of each node — role and term, log writes, snapshots,
//! commit index, applied messages, restarts — and [`SafetyChecker`] judges the whole run:
//! - **election-safety**: at most one leader per term, ever (not only at sampled moments);
//! - **log-matching**: two logs holding an entry with the same index and term agree on every
//!   entry up to it;
//! - **leader-completeness**: an entry committed in a term is in the log of every leader of a
//!   later term;
//! - **state-machine-safety**: no two nodes commit or apply different entries at one index, a
//!   node never changes or drops an entry it knows is committed, nothing is applied before it
//!   is committed;
//! - **apply-order**: each node applies indexes in order without gaps, resumes at
//!   snapshot_index + 1 after a snapshot, and is never handed a snapshot behind what it
//!   applied;
//! - **commit-majority**: when a leader advances its commit index to i, a majority of servers
//!   (itself included) hold entry i with the leader's term there and the same prefix — nothing is
//!   committed that a majority does not store (Raft §5.3–5.4, Figure 2 "Rules for Servers");
//! - **match-index**: while a follower's term equals its leader's, the leader's match index for
//!   it never exceeds the prefix the follower holds matching the leader's log (a deposed
//!   leader's stale bookkeeping is not judged).
//!
//! Every observation costs O(what changed · log n): logs are kept as chains of running hashes
//! (the chain at index i digests the whole prefix up to i), so comparing two prefixes is one
//! integer comparison, never a scan.
//!
//! Observation order within one step: [`SafetyChecker::observe_role`], then
//! [`SafetyChecker::observe_snapshot`], then [`SafetyChecker::observe_entries`] /
//! [`SafetyChecker::observe_log_end`], then [`SafetyChecker::observe_match`], then
//! [`SafetyChecker::observe_commit`], then the applied messages in order.

use std::collections::BTreeMap;
use std::fmt;

/// Which property a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Property {
    /// At most one leader in any term (Raft §5.2, Figure 3).
    ElectionSafety,
    /// Two logs holding an entry with the same index and term agree up to it (Raft §5.3, Figure 3).
    LogMatching,
    /// A committed entry is in the log of every leader of a later term (Raft §5.4, Figure 3).
    LeaderCompleteness,
    /// No two nodes apply different commands at one index (Raft §5.4.3, Figure 3); nor does a node
    /// drop a committed entry or apply one before it is committed.
    StateMachineSafety,
    /// Each node applies indexes in order with no gap (6.824 tester's "apply out of order"; Raft
    /// §5.3: entries are applied in log order).
    ApplyOrder,
    /// A leader's commit index never passes an entry a majority of servers hold (Raft §5.3:
    /// "replicated it on a majority of the servers"; Figure 2's rule for advancing commitIndex).
    CommitMajority,
    /// A leader's match index for a follower of its term never passes the prefix that follower
    /// holds matching the leader's log (Figure 2: matchIndex is "index of highest log entry
    /// known to be replicated on server").
    MatchIndex,
}

impl Property {
    /// The checker's name as printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Property::ElectionSafety => "election-safety",
            Property::LogMatching => "log-matching",
            Property::LeaderCompleteness => "leader-completeness",
            Property::StateMachineSafety => "state-machine-safety",
            Property::ApplyOrder => "apply-order",
            Property::CommitMajority => "commit-majority",
            Property::MatchIndex => "match-index",
        }
    }

    /// Every property, in the order of this enum.
    pub fn all() -> &'static [Property] {
        &[
            Property::ElectionSafety,
            Property::LogMatching,
            Property::LeaderCompleteness,
            Property::StateMachineSafety,
            Property::ApplyOrder,
            Property::CommitMajority,
            Property::MatchIndex,
        ]
    }
}

/// A broken property, with a one-line explanation naming node, term and index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The property broken.
    pub property: Property,
    /// One line naming the node, term and index involved.
    pub message: String,
}

impl Violation {
    /// The checker's name, e.g. `"election-safety"`.
    pub fn checker(&self) -> &'static str {
        self.property.name()
    }

    fn new(property: Property, message: String) -> Violation {
        Violation { property, message }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property.name(), self.message)
    }
}

impl std::error::Error for Violation {}

/// A stable 64-bit hash of an entry's command bytes, for observers that have bytes: the
/// checkers' fixed word-at-a-time hash ([`crate::linearizability::hash::hash_of`]), the
/// same on every machine. (Byte-at-a-time FNV-1a was 3 % of a key/value run.)
pub fn entry_hash(bytes: &[u8]) -> u64 {
    crate::linearizability::hash::hash_of(bytes)
}

/// Splitmix64 finalizer: a cheap, well-mixed bijection.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The running hash of a log prefix extended by one entry.
fn chain(prev: u64, term: u64, hash: u64) -> u64 {
    mix(mix(prev ^ 0x9E37_79B9_7F4A_7C15).wrapping_add(term) ^ mix(hash.wrapping_add(1)))
}

/// Chain value standing for a snapshot whose prefix the checker never saw entry by entry.
fn opaque_snapshot_chain(index: u64, term: u64) -> u64 {
    mix(mix(index ^ 0x5A5A_5A5A_5A5A_5A5A).wrapping_add(term))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    term: u64,
    hash: u64,
    chain: u64,
}

/// One node's log as observed: a snapshot boundary, then entries.
#[derive(Clone, Debug, Default)]
struct NodeLog {
    base_index: u64,
    base_term: u64,
    base_chain: u64,
    /// `slots[i]` is index `base_index + 1 + i`.
    slots: Vec<Slot>,
}

impl NodeLog {
    fn last_index(&self) -> u64 {
        self.base_index + self.slots.len() as u64
    }

    fn slot(&self, index: u64) -> Option<&Slot> {
        if index <= self.base_index {
            return None;
        }
        self.slots.get((index - self.base_index - 1) as usize)
    }

    /// Chain at `index`: known for the snapshot boundary and the entries after it.
    fn chain_at(&self, index: u64) -> Option<u64> {
        if index == self.base_index {
            Some(self.base_chain)
        } else {
            self.slot(index).map(|s| s.chain)
        }
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.base_index {
            Some(self.base_term)
        } else {
            self.slot(index).map(|s| s.term)
        }
    }

    fn truncate_to(&mut self, last_index: u64) {
        if last_index < self.last_index() {
            let keep = last_index.saturating_sub(self.base_index) as usize;
            self.slots.truncate(keep);
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Node {
    term: u64,
    is_leader: bool,
    log: NodeLog,
    commit_index: u64,
    applied_index: u64,
    /// Restarted without saying where its state machine resumes: the next apply sets it.
    applied_unknown: bool,
    /// While it leads: its match index for each server (its own slot unused), as last reported.
    match_index: Vec<u64>,
}

/// The first sighting of an (index, term) pair.
#[derive(Clone, Copy, Debug)]
struct Witness {
    chain: u64,
    prev_chain: u64,
    node: usize,
}

/// What the run knows about a committed index.
#[derive(Clone, Copy, Debug)]
struct Committed {
    term: u64,
    hash: u64,
    chain: u64,
    /// The first node seen committing it, for messages.
    node: usize,
}

/// Incremental judge of the Raft safety properties for one run of `nodes` nodes (ids 0..n).
#[derive(Clone, Debug)]
pub struct SafetyChecker {
    nodes: Vec<Node>,
    /// term → the node observed leading it.
    leaders: BTreeMap<u64, usize>,
    /// index - 1 → (term, first sighting) of each entry seen at that index: the Log Matching
    /// witnesses. Dense by index (most indexes see one term, a few see two or three), because
    /// a map keyed by (index, term) cost a tree search per written entry.
    witnesses: Vec<Vec<(u64, Witness)>>,
    /// index - 1 → the committed entry, where known.
    committed: Vec<Option<Committed>>,
    /// term → the highest index any node at that term knew to be committed.
    commit_by_term: BTreeMap<u64, u64>,
    /// index - 1 → (hash, node) of the first command applied there.
    applied: Vec<Option<(u64, usize)>>,
    observations: u64,
    /// Whether the observer reports logs and commit indexes (false for an implementation that
    /// exposes only `get_state` and its applies): then "applied beyond commit" cannot be judged.
    sees_logs: bool,
}

impl SafetyChecker {
    /// A checker for a cluster of `nodes` servers, numbered 0..nodes, with nothing observed yet.
    pub fn new(nodes: usize) -> SafetyChecker {
        SafetyChecker {
            nodes: vec![Node::default(); nodes],
            leaders: BTreeMap::new(),
            witnesses: Vec::new(),
            committed: Vec::new(),
            commit_by_term: BTreeMap::new(),
            applied: Vec::new(),
            observations: 0,
            sees_logs: true,
        }
    }

    /// A checker for an implementation observed only through sampled `get_state` results and
    /// its applies (the course's view of a student's Raft): election safety from the samples,
    /// state-machine safety and apply order from the applies; log matching, leader
    /// completeness and "applied beyond commit" are not judged, as nothing is known of logs.
    pub fn for_roles_and_applies(nodes: usize) -> SafetyChecker {
        SafetyChecker { sees_logs: false, ..SafetyChecker::new(nodes) }
    }

    /// Whether this checker judges log matching, leader completeness and commits.
    pub fn sees_logs(&self) -> bool {
        self.sees_logs
    }

    /// Number of observations made so far.
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// The node's current term and whether it believes it leads. Call after every step that
    /// may have changed either (calling it when nothing changed is cheap).
    ///
    /// # Errors
    /// A [`Violation`]: election-safety when another node led `term`; leader-completeness when the new leader's log
    /// lacks an entry committed in an earlier term.
    pub fn observe_role(&mut self, node: usize, term: u64, is_leader: bool) -> Result<(), Violation> {
        self.observations += 1;
        let n = &mut self.nodes[node];
        let newly_leader = is_leader && !(n.is_leader && n.term == term);
        n.term = term;
        n.is_leader = is_leader;
        if !is_leader || newly_leader {
            n.match_index.clear(); // a new term's bookkeeping starts empty
        }
        if !newly_leader {
            return self.check_matches_of(node);
        }
        match self.leaders.get(&term) {
            Some(&other) if other != node => {
                return Err(Violation::new(
                    Property::ElectionSafety,
                    format!("nodes {other} and {node} are both leader in term {term}"),
                ));
            }
            Some(_) => {}
            None => {
                self.leaders.insert(term, node);
            }
        }
        self.check_leader_has_commits(node, term)
    }

    /// The node's log from `first_index` on is now `entries` (term, entry hash), in order;
    /// anything it held after them is gone. An append is `first_index = last + 1`; a
    /// truncate-and-append starts at the first replaced index.
    ///
    /// # Errors
    /// A [`Violation`]: log-matching when the write falls outside the node's log or an entry contradicts another log
    /// holding the same (index, term); state-machine-safety when it replaces, or drops, an entry the node knows is
    /// committed.
    pub fn observe_entries(&mut self, node: usize, first_index: u64, entries: &[(u64, u64)]) -> Result<(), Violation> {
        self.observe_entries_from(node, first_index, entries.iter().copied())
    }

    /// [`SafetyChecker::observe_entries`] with the (term, entry hash) pairs as an iterator,
    /// so an observer hashes each command as it goes instead of collecting them first.
    ///
    /// # Errors
    /// As [`SafetyChecker::observe_entries`].
    pub fn observe_entries_from(
        &mut self,
        node: usize,
        first_index: u64,
        entries: impl IntoIterator<Item = (u64, u64)>,
    ) -> Result<(), Violation> {
        self.observations += 1;
        let log = &self.nodes[node].log;
        if first_index <= log.base_index || first_index > log.last_index() + 1 {
            return Err(Violation::new(
                Property::LogMatching,
                format!(
                    "node {node} wrote index {first_index} outside its log (snapshot at {}, last index {})",
                    log.base_index,
                    log.last_index()
                ),
            ));
        }
        let mut next = first_index;
        for (term, hash) in entries {
            self.write_entry(node, next, term, hash)?;
            next += 1;
        }
        self.observe_log_end(node, next - 1)
    }

    /// The node's log now ends at `last_index` (entries after it were dropped).
    ///
    /// # Errors
    /// A [`Violation`]: state-machine-safety when the log drops an entry the node knows is committed.
    pub fn observe_log_end(&mut self, node: usize, last_index: u64) -> Result<(), Violation> {
        let n = &mut self.nodes[node];
        if last_index < n.commit_index && last_index < n.log.last_index() {
            return Err(Violation::new(
                Property::StateMachineSafety,
                format!(
                    "node {node} dropped committed entries: commit index {} but its log now ends at {last_index}",
                    n.commit_index
                ),
            ));
        }
        n.log.truncate_to(last_index);
        self.check_matches_of(node)
    }

    /// The node's log now starts after a snapshot covering everything up to (`index`, `term`).
    /// If its log held that entry, the entries after it stay; otherwise the log is just the
    /// snapshot.
    ///
    /// # Errors
    /// A [`Violation`]: state-machine-safety when the snapshot contradicts a committed entry.
    pub fn observe_snapshot(&mut self, node: usize, index: u64, term: u64) -> Result<(), Violation> {
        self.observations += 1;
        let log = &self.nodes[node].log;
        if index == log.base_index && term == log.base_term {
            return Ok(());
        }
        let known = match log.term_at(index) {
            Some(t) if t == term => log.chain_at(index),
            _ => None,
        };
        let chain = known
            .or_else(|| self.witness(index, term).map(|w| w.chain))
            .or_else(|| self.committed_at(index).filter(|c| c.term == term).map(|c| c.chain))
            .unwrap_or_else(|| opaque_snapshot_chain(index, term));
        // A snapshot holds applied, hence committed, entries only.
        if let Some(c) = self.committed_at(index) {
            if c.chain != chain {
                return Err(Violation::new(
                    Property::StateMachineSafety,
                    format!(
                        "node {node} holds a snapshot ending at (index {index}, term {term}) unlike the committed log, whose entry there has term {} (committed by node {})",
                        c.term, c.node
                    ),
                ));
            }
        }
        let log = &mut self.nodes[node].log;
        if known.is_some() {
            let drop = (index - log.base_index) as usize;
            log.slots.drain(..drop);
        } else {
            log.slots.clear();
        }
        log.base_index = index;
        log.base_term = term;
        log.base_chain = chain;
        self.check_matches_of(node)
    }

    /// The node's commit index. It only grows while the node lives; a restart resets it
    /// (see [`SafetyChecker::observe_restart`]).
    ///
    /// # Errors
    /// A [`Violation`]: state-machine-safety when the node commits past its log's end or an entry other than one
    /// already committed at that index; leader-completeness when a leader of a later term lacks the newly committed
    /// entry; commit-majority when a leader advances its commit index to an entry fewer than a
    /// majority of servers hold. A commit index that falls (a restart not yet observed) is
    /// ignored.
    pub fn observe_commit(&mut self, node: usize, commit_index: u64) -> Result<(), Violation> {
        self.observations += 1;
        let old = self.nodes[node].commit_index;
        if commit_index <= old {
            return Ok(());
        }
        let last = self.nodes[node].log.last_index();
        if commit_index > last {
            return Err(Violation::new(
                Property::StateMachineSafety,
                format!("node {node} commits index {commit_index} beyond its last log index {last}"),
            ));
        }
        if self.nodes[node].is_leader {
            self.check_commit_majority(node, commit_index)?;
        }
        for index in old + 1..=commit_index {
            let Some(slot) = self.nodes[node].log.slot(index).copied() else {
                continue; // inside a snapshot: checked when the snapshot was observed
            };
            match self.committed_at(index) {
                Some(c) if c.chain != slot.chain => {
                    return Err(Violation::new(
                        Property::StateMachineSafety,
                        format!(
                            "node {node} commits (index {index}, term {}) but node {} committed a different entry there (term {})",
                            slot.term, c.node, c.term
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    let slots = &mut self.committed;
                    if slots.len() < index as usize {
                        slots.resize(index as usize, None);
                    }
                    slots[index as usize - 1] =
                        Some(Committed { term: slot.term, hash: slot.hash, chain: slot.chain, node });
                }
            }
        }
        let term = self.nodes[node].term;
        self.nodes[node].commit_index = commit_index;
        let best = self.commit_by_term.entry(term).or_insert(0);
        *best = (*best).max(commit_index);
        // Leaders of later terms must already hold what this node now knows is committed:
        // it learned the commit in a term no later than its own.
        if let Some(chain) = self.nodes[node].log.chain_at(commit_index) {
            for (leader, l) in self.nodes.iter().enumerate() {
                if leader != node && l.is_leader && l.term > term {
                    let has = l.log.chain_at(commit_index);
                    let covered = commit_index < l.log.base_index;
                    if !covered && has != Some(chain) {
                        return Err(Violation::new(
                            Property::LeaderCompleteness,
                            format!(
                                "leader {leader} of term {} lacks entry {commit_index} that node {node} (term {term}) has committed",
                                l.term
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The leader `node`'s match index for each server (its own slot ignored): what it believes
    /// each follower's log holds matching its own. Judged now and whenever a follower's log
    /// shrinks; only followers whose term equals the leader's are judged.
    ///
    /// # Errors
    /// A [`Violation`]: match-index when a follower of the leader's term holds less than the
    /// leader's match index for it, or holds another entry there.
    pub fn observe_match(&mut self, node: usize, match_index: &[u64]) -> Result<(), Violation> {
        self.observations += 1;
        // In place: a leader reports its match indexes on nearly every step.
        let kept = &mut self.nodes[node].match_index;
        kept.clear();
        kept.extend_from_slice(match_index);
        for peer in 0..self.nodes.len().min(match_index.len()) {
            if peer != node {
                self.check_match(node, peer)?;
            }
        }
        Ok(())
    }

    /// The node's state machine applied the command with hash `hash` at `index`.
    ///
    /// # Errors
    /// A [`Violation`]: apply-order for an index that is not the next one; state-machine-safety for an index past the
    /// node's commit index (when logs are observed), or a command other than the one committed or applied elsewhere
    /// at that index.
    pub fn observe_apply(&mut self, node: usize, index: u64, hash: u64) -> Result<(), Violation> {
        self.observations += 1;
        let n = &self.nodes[node];
        let expected = n.applied_index + 1;
        if index != expected && !n.applied_unknown {
            return Err(Violation::new(
                Property::ApplyOrder,
                format!("node {node} applied index {index}, expected {expected}"),
            ));
        }
        if self.sees_logs && index > n.commit_index {
            return Err(Violation::new(
                Property::StateMachineSafety,
                format!("node {node} applied index {index} beyond its commit index {}", n.commit_index),
            ));
        }
        if let Some(c) = self.committed_at(index) {
            if c.hash != hash {
                return Err(Violation::new(
                    Property::StateMachineSafety,
                    format!(
                        "node {node} applied a command at index {index} other than the committed one (term {}, committed by node {})",
                        c.term, c.node
                    ),
                ));
            }
        }
        let slots = &mut self.applied;
        if slots.len() < index as usize {
            slots.resize(index as usize, None);
        }
        match slots[index as usize - 1] {
            Some((h, other)) if h != hash => {
                return Err(Violation::new(
                    Property::StateMachineSafety,
                    format!("nodes {other} and {node} applied different commands at index {index}"),
                ));
            }
            Some(_) => {}
            None => slots[index as usize - 1] = Some((hash, node)),
        }
        self.nodes[node].applied_index = index;
        self.nodes[node].applied_unknown = false;
        Ok(())
    }

    /// The node's state machine was replaced by a snapshot covering everything up to `index`.
    ///
    /// # Errors
    /// A [`Violation`]: apply-order when the snapshot is behind what the node applied.
    pub fn observe_apply_snapshot(&mut self, node: usize, index: u64) -> Result<(), Violation> {
        self.observations += 1;
        let n = &mut self.nodes[node];
        if index < n.applied_index && !n.applied_unknown {
            return Err(Violation::new(
                Property::ApplyOrder,
                format!(
                    "node {node} was handed a snapshot at index {index} after applying up to {}: its state would rewind",
                    n.applied_index
                ),
            ));
        }
        n.applied_index = index;
        n.applied_unknown = false;
        Ok(())
    }

    /// The node crashed and restarted: it is no leader, knows nothing committed beyond its
    /// snapshot, and its service has reloaded that snapshot (the 2023+ course semantics), so it
    /// applies from `snapshot_index + 1`. Re-observe its log afterwards if the restarted node
    /// may hold a different log than was last observed.
    pub fn observe_restart(&mut self, node: usize, snapshot_index: u64) {
        self.observations += 1;
        let n = &mut self.nodes[node];
        n.is_leader = false;
        n.match_index.clear();
        n.commit_index = snapshot_index;
        n.applied_index = snapshot_index;
        n.applied_unknown = false;
    }

    /// The node crashed and restarted without saying where its state machine resumes (an
    /// implementation that exposes only its applies): the next apply or snapshot sets it.
    pub fn observe_restart_unknown(&mut self, node: usize) {
        self.observations += 1;
        let n = &mut self.nodes[node];
        n.is_leader = false;
        n.match_index.clear();
        n.applied_unknown = true;
    }

    /// Judge every current leader's match index for `follower` (after its log changed).
    fn check_matches_of(&self, follower: usize) -> Result<(), Violation> {
        for leader in 0..self.nodes.len() {
            if leader != follower && self.nodes[leader].is_leader {
                self.check_match(leader, follower)?;
            }
        }
        Ok(())
    }

    /// Check the leader's match index for `peer` against what `peer` holds, when both are in
    /// the same term.
    fn check_match(&self, leader: usize, peer: usize) -> Result<(), Violation> {
        let l = &self.nodes[leader];
        let f = &self.nodes[peer];
        if !l.is_leader || f.term != l.term {
            return Ok(());
        }
        let Some(&m) = l.match_index.get(peer) else {
            return Ok(());
        };
        if m == 0 || m <= f.log.base_index {
            return Ok(()); // nothing claimed, or inside the follower's snapshot of committed entries
        }
        let term = l.term;
        if f.log.last_index() < m {
            return Err(Violation::new(
                Property::MatchIndex,
                format!(
                    "leader {leader} of term {term} has match index {m} for node {peer}, whose log ends at {} (snapshot at {})",
                    f.log.last_index(),
                    f.log.base_index
                ),
            ));
        }
        match (l.log.chain_at(m), f.log.chain_at(m)) {
            (Some(ours), Some(theirs)) if ours != theirs => Err(Violation::new(
                Property::MatchIndex,
                format!(
                    "leader {leader} of term {term} has match index {m} for node {peer}, which holds term {} there, unlike the leader's term {}",
                    f.log.term_at(m).unwrap_or(0),
                    l.log.term_at(m).unwrap_or(0)
                ),
            )),
            _ => Ok(()),
        }
    }

    fn committed_at(&self, index: u64) -> Option<Committed> {
        if index == 0 {
            return None;
        }
        self.committed.get(index as usize - 1).copied().flatten()
    }

    /// The first sighting of (`index`, `term`), if any.
    fn witness(&self, index: u64, term: u64) -> Option<&Witness> {
        let seen = self.witnesses.get(index.checked_sub(1)? as usize)?;
        seen.iter().find(|(t, _)| *t == term).map(|(_, w)| w)
    }

    fn write_entry(&mut self, node: usize, index: u64, term: u64, hash: u64) -> Result<(), Violation> {
        let n = &self.nodes[node];
        let prev = n.log.chain_at(index - 1).expect("index - 1 is the snapshot boundary or an entry");
        let chain = chain(prev, term, hash);
        if let Some(old) = n.log.slot(index) {
            if index <= n.commit_index && old.chain != chain {
                return Err(Violation::new(
                    Property::StateMachineSafety,
                    format!(
                        "node {node} replaced its committed entry at index {index} (term {} → term {term})",
                        old.term
                    ),
                ));
            }
        }
        match self.witness(index, term) {
            Some(w) if w.chain != chain => {
                let detail = if w.prev_chain == prev { "different commands" } else { "different entries before it" };
                let message = if w.node == node {
                    format!("node {node} holds (index {index}, term {term}) with {detail} than when it first held it")
                } else {
                    format!("nodes {} and {node} both hold (index {index}, term {term}) with {detail}", w.node)
                };
                return Err(Violation::new(Property::LogMatching, message));
            }
            Some(_) => {}
            None => {
                let at = (index - 1) as usize;
                if self.witnesses.len() <= at {
                    self.witnesses.resize_with(at + 1, Vec::new);
                }
                self.witnesses[at].push((term, Witness { chain, prev_chain: prev, node }));
            }
        }
        // Replace in place rather than truncate: the old entries after this one stay visible
        // until overwritten, so a committed one among them cannot vanish unchecked.
        // `observe_entries` drops whatever remains past the write at the end.
        let log = &mut self.nodes[node].log;
        let slot = Slot { term, hash, chain };
        if index <= log.last_index() {
            let offset = (index - log.base_index - 1) as usize;
            log.slots[offset] = slot;
        } else {
            log.slots.push(slot);
        }
        Ok(())
    }

    /// Check that the leader `node`, advancing its commit index to `index`, is backed by a
    /// majority of servers holding its entry there: the same (index, term) and prefix, or a
    /// snapshot reaching past it (snapshots hold committed entries only, checked when observed).
    fn check_commit_majority(&self, node: usize, index: u64) -> Result<(), Violation> {
        let leader = &self.nodes[node].log;
        let Some(chain) = leader.chain_at(index) else {
            return Ok(()); // inside the leader's own snapshot: committed before
        };
        let holders: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.log.base_index > index || n.log.chain_at(index) == Some(chain))
            .map(|(i, _)| i)
            .collect();
        let majority = self.nodes.len() / 2 + 1;
        if holders.len() >= majority {
            return Ok(());
        }
        let term = self.nodes[node].term;
        let entry_term = leader.term_at(index).unwrap_or(0);
        Err(Violation::new(
            Property::CommitMajority,
            format!(
                "leader {node} of term {term} commits index {index} (term {entry_term}) held by only {} of {} servers {holders:?}; a majority is {majority}",
                holders.len(),
                self.nodes.len()
            ),
        ))
    }

    /// Check that a node that just became leader of `term` holds every entry committed in
    /// earlier terms.
    fn check_leader_has_commits(&self, node: usize, term: u64) -> Result<(), Violation> {
        let Some(index) = self.commit_by_term.range(..term).map(|(_, &i)| i).max() else {
            return Ok(());
        };
        if index == 0 {
            return Ok(());
        }
        let log = &self.nodes[node].log;
        if index < log.base_index {
            return Ok(()); // inside its snapshot, which was checked against the committed log
        }
        let Some(c) = self.committed_at(index) else {
            return Ok(()); // committed inside some node's snapshot: no entry-level knowledge
        };
        match log.chain_at(index) {
            None => Err(Violation::new(
                Property::LeaderCompleteness,
                format!(
                    "node {node} became leader of term {term} without committed entry {index} (its log ends at {})",
                    log.last_index()
                ),
            )),
            Some(chain) if chain != c.chain => Err(Violation::new(
                Property::LeaderCompleteness,
                format!(
                    "node {node} became leader of term {term} holding term {} at index {index}, where term {} was committed",
                    log.term_at(index).unwrap_or(0),
                    c.term
                ),
            )),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_distinguish_order_and_content() {
        let a = chain(chain(0, 1, 10), 1, 11);
        let b = chain(chain(0, 1, 11), 1, 10);
        let c = chain(chain(0, 1, 10), 2, 11);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, chain(chain(0, 1, 10), 1, 11));
        assert_ne!(entry_hash(b"x"), entry_hash(b"y"));
    }
}
