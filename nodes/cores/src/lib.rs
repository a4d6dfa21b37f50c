//! Pure protocol cores: plain structs driven by inputs, returning outputs; no async, no runtime, no clock.

#![deny(missing_docs)]

pub mod bytes;
pub mod kv;
pub mod mapreduce;
pub mod paxos;
pub mod paxos_log;
pub mod pbservice;
pub mod raft;
pub mod replica;
pub mod rsm;
pub mod shardctrler;
pub mod shardkv;
pub mod viewservice;
