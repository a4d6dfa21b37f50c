//! `cargo student …`: simlab's whole command line (list, run, sweep, replay, determinism,
//! bugs, ...) for the student Raft's family, through the same library entry point as
//! `cargo xtask`.

fn main() -> std::process::ExitCode {
    simlab_cli::main(student_raft::catalogue())
}
