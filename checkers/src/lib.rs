//! History and invariant checkers over plain data; depends on no other crate of the workspace.

#![deny(missing_docs)]

pub mod formats;
pub mod html;
pub mod linearizability;
pub mod models;
pub mod raft;
pub mod shards;
pub mod views;
