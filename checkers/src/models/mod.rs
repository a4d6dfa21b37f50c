//! Sequential specifications for the linearizability checker.
//!
//! - [`kv`]: the course's key/value store (Get/Put/Append), partitioned by key.
//! - [`cas_register`]: one compare-and-set register, as in the Jepsen etcd logs.

pub mod cas_register;
pub mod kv;
