//! Actor shells: each runs a pure core from `cores` on the simulated world, carrying out its
//! outputs (persist, then send, then apply) and making no protocol decisions of its own.

pub mod course;
pub mod mapreduce;
pub mod oldlabs;
pub mod replica;
pub mod rsm;
pub mod shardctrler;
pub mod shardkv;
