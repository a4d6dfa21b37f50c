//! Scenarios: faithful ports of the course's tests and swarm scenarios. The only crate that
//! wires nodes, sim and checkers together; it observes nodes only through their public
//! surface and judges runs through checkers.

pub mod determinism;
pub mod engine;
pub mod golden;
pub mod kvraft;
pub mod mapreduce;
pub mod prop;
pub mod raft;
pub mod registry;
pub mod seeds;
pub mod swarm;

pub use registry::{all, families, run_scenario, select, Family, Opts, Scenario};
