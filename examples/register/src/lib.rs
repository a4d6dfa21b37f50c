//! A protocol of a user's own under simlab: a register replicated by chain replication, with
//! two scenarios, its own checkers (a linearizability model for the register and the chain's
//! invariant), two planted mistakes, and the whole command line (`cargo register …`) from
//! `simlab_cli`. Nothing here is from the course; nothing of simlab is copied: the servers run
//! on `sim`, histories go to `checkers::linearizability`, the family to `simlab_cli::main`.

pub mod checker;
pub mod scenarios;
pub mod server;

use ::scenarios::registry::Catalogue;

/// What this crate's command line serves: the family `register`, under the name its users
/// type (`cargo register`, the alias in `.cargo/config.toml`), which failing runs quote.
pub fn catalogue() -> Catalogue {
    Catalogue::new().with_command("cargo register").with_family(scenarios::family())
}
