//! The simulated world on madsim: nodes that crash and restart, a network with the course's
//! `labrpc` semantics plus one-way cuts, clogs and duplicates, a crash-consistent persister,
//! a shared file system with atomic rename, a hashed trace, and the run harness.
//!
//! `sim` knows nothing of Raft or MapReduce. Node code talks to the world through a
//! [`NodeCtx`]; scenarios drive it through the free functions here and in [`net`].
//!
//! One file per concern: the world kernel (`world.rs`: node table, trace and livelock
//! watchdog, failure signal), scheduler and time (`sched.rs`), processes (`process.rs`),
//! the node-side API (`node.rs`), the persister (`persist.rs`), the fault points (`points.rs`), annotations
//! (`annotate.rs`), the network ([`net`]) and files ([`fs`]); the run harness is [`run`](mod@run);
//! the TOML files users write are read through [`tomlfile`].

#![deny(missing_docs)]

mod annotate;
pub mod failure;
pub mod faults;
pub mod fs;
pub mod history;
pub mod net;
mod node;
mod persist;
mod points;
mod process;
pub mod rng;
pub mod run;
mod sched;
pub mod tomlfile;
pub mod trace;
mod world;

pub use annotate::{annotate, annotations, end_annotations, Annotation};
pub use failure::{Failure, FailureClass, Outcome};
pub use net::{decode, encode, Incoming, NetConfig, ReplyTo, RpcError};
pub use node::{NodeCtx, Recv};
pub use persist::{crash_after_saves, disarm_fault_points, persisted, Persisted, Rope};
pub use points::{
    enable_fault_points, enabled_fault_points, fault_point, fault_point_crash, fault_point_duplicate,
    fault_point_enabled, fault_point_fired, fault_point_hold, fault_point_marks, set_fault_point_release, FaultPoint,
};
pub use process::{client, crash, incarnation, is_alive, node_count, node_name, restart, spawn, spawn_process};
pub use run::{portable_location, run, Attachment, RunConfig, RunReport};
pub use sched::{at, now, sleep, sleep_until, timeout, Sleep};
pub use trace::{CapturedEvent, NoteCode, TraceMode};
pub use world::{
    attach, describe, describe_as, describe_once, fail, failed, mark, note, rng, seed, stats, NodeId, Stats,
    HOLD_MARKS, WORLD_MARKS,
};
