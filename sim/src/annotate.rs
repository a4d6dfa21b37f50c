//! Annotations: labelled intervals of a run (a node down, a partition, a leadership), kept
//! for history pictures and returned with the run's report. They are not part of the trace.

use crate::world::{with, Kernel, NodeId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A labelled interval of the run (crash, partition, leader change), for history pictures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    /// Simulated nanoseconds since the run started.
    pub start_ns: u64,
    /// When it ended; `None` while still open (or if it never ended).
    pub end_ns: Option<u64>,
    /// What the interval is, e.g. `s2 down`, `partition s0 s1 | s2`, `leader, term 3`.
    pub label: String,
    /// The node it concerns, if any (a partition concerns none).
    pub node: Option<NodeId>,
}

impl Kernel {
    /// Opens an interval now, with no end yet; returns its index (to end it later).
    pub fn open_annotation(&mut self, label: String, node: Option<NodeId>) -> usize {
        let now = self.now_ns();
        self.annotations.push(Annotation { start_ns: now, end_ns: None, label, node });
        self.annotations.len() - 1
    }

    /// Ends the interval at `index` now.
    pub fn close_annotation(&mut self, index: usize) {
        let now = self.now_ns();
        self.annotations[index].end_ns = Some(now);
    }

    /// Ends the node's open annotations whose label starts with `prefix`, now.
    pub fn end_annotations(&mut self, node: NodeId, prefix: &str) {
        let now = self.now_ns();
        for a in self
            .annotations
            .iter_mut()
            .filter(|a| a.node == Some(node) && a.end_ns.is_none() && a.label.starts_with(prefix))
        {
            a.end_ns = Some(now);
        }
    }

    /// A node came back: ends its latest open "down" interval, or marks an instant restart.
    pub fn annotate_restart(&mut self, node: NodeId) {
        let now = self.now_ns();
        let name = self.nodes[node.index()].name.clone();
        if let Some(a) = self
            .annotations
            .iter_mut()
            .rev()
            .find(|a| a.node == Some(node) && a.end_ns.is_none() && a.label.ends_with(" down"))
        {
            a.end_ns = Some(now);
        } else {
            self.annotations.push(Annotation {
                start_ns: now,
                end_ns: Some(now),
                label: format!("{name} restart"),
                node: Some(node),
            });
        }
    }
}

/// Adds a labelled interval to the run's annotations (for history pictures).
pub fn annotate(start: Duration, end: Option<Duration>, label: impl Into<String>, node: Option<NodeId>) {
    with(|w| {
        w.kernel.annotations.push(Annotation {
            start_ns: start.as_nanos() as u64,
            end_ns: end.map(|e| e.as_nanos() as u64),
            label: label.into(),
            node,
        })
    });
}

/// Ends the node's open annotations (no end yet) whose label starts with `prefix`, now.
pub fn end_annotations(node: NodeId, prefix: &str) {
    with(|w| w.kernel.end_annotations(node, prefix));
}

/// The run's annotations so far (crashes, restarts, partitions, leader changes).
pub fn annotations() -> Vec<Annotation> {
    with(|w| w.kernel.annotations.clone())
}
