//! Scenarios: faithful ports of the course's tests and swarm scenarios. The only crate that
//! wires nodes, sim and checkers together; it observes nodes only through their public
//! surface and judges runs through checkers.

pub mod coverage;
pub mod determinism;
pub mod engine;
pub mod golden;
pub mod kvraft;
pub mod mapreduce;
pub mod oldlabs;
pub mod prop;
pub mod raft;
pub mod registry;
pub mod seeds;
pub mod shardctrler;
pub mod shardkv;
pub mod shards;
pub mod shrink;
pub mod spec;
pub mod swarm;

pub use registry::{all, run_scenario, select, Catalogue, Family, Opts, Scenario};

/// `n` and the noun, plural unless `n` is 1 (`1 clerk`, `3 keys`), for descriptions and
/// failure messages; `noun` is the singular, made plural with an `s`.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// This project's catalogue: the MapReduce, Raft and key/value families with their planted
/// bugs, and the runtime-free property tests of the Raft core. `cargo xtask` serves exactly
/// this through the command-line library, the same entry point a downstream crate uses.
pub fn catalogue() -> Catalogue {
    Catalogue::new()
        .with_family(mapreduce::family())
        .with_family(raft::family())
        .with_family(kvraft::family())
        .with_family(shardctrler::family())
        .with_family(shardkv::family())
        .with_family(oldlabs::viewservice::family())
        .with_family(oldlabs::pbservice::family())
        .with_family(oldlabs::paxos::family())
        .with_family(oldlabs::kvpaxos::family())
        .with_family(oldlabs::shardmaster::family())
        .with_family(oldlabs::shardkv_paxos::family())
        .with_property_tests(prop::all())
}
