//! `cargo register …`: simlab's whole command line (list, run, sweep, replay, determinism,
//! bugs, ...) for the chain-replicated register's scenarios.

fn main() -> std::process::ExitCode {
    simlab_cli::main(chain_register::catalogue())
}
