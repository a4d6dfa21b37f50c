//! `cargo xtask`: this project's command line — the library `simlab_cli` serving this
//! project's catalogue (`scenarios::catalogue()`), the same entry point a downstream crate
//! calls with a catalogue of its own.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    simlab_cli::main(scenarios::catalogue())
}
