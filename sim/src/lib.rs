//! The simulated world on madsim: nodes that crash and restart, a network with the course's
//! `labrpc` semantics plus one-way cuts, clogs and duplicates, a crash-consistent persister,
//! a shared file system with atomic rename, a hashed trace, and the run harness.
//!
//! `sim` knows nothing of Raft or MapReduce. Node code talks to the world through a
//! [`NodeCtx`]; scenarios drive it through the free functions here and in [`net`].

pub mod failure;
pub mod faults;
pub mod fs;
pub mod history;
pub mod net;
pub mod rng;
pub mod run;
pub mod trace;
mod world;

pub use failure::{Failure, FailureClass, Outcome};
pub use net::{decode, encode, Incoming, NetConfig, ReplyTo, RpcError};
pub use run::{run, RunConfig, RunReport};
pub use trace::{CapturedEvent, TraceMode};
pub use world::{
    annotate, annotations, at, client, crash, crash_after_saves, describe, disarm_fault_points, end_annotations, fail,
    failed, incarnation, is_alive, node_count, node_name, note, now, persisted, restart, rng, seed, sleep, sleep_until,
    spawn, spawn_process, stats, timeout, Annotation, NodeCtx, NodeId, Persisted, Recv, Rope, Sleep, Stats,
};
