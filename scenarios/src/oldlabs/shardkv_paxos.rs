//! Lab 4B (2015) on Paxos.

use crate::engine::PaxosEngine;
use crate::registry::Family;
use crate::shardkv::OwnShardKv;

/// The family.
pub fn family() -> Family {
    crate::shardkv::conformance::<PaxosEngine, OwnShardKv>("shardkv_paxos")
}
