//! `cargo xtask`: the project's own commands. Each one first makes sure the
//! machine has what it needs (see `setup`), so a fresh clone needs nothing
//! installed by hand.

mod bench;
mod cmd;
mod demo;
mod flood_bench;
mod setup;
mod shootout;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, demo and test steerer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing (nightly rust-src, bpf-linker, Debian
    /// packages, bpffs); does nothing when everything is there.
    Setup,
    /// Without arguments: build a demo lab in network namespaces, steer real
    /// TCP traffic through it and show what steerer learned. With
    /// `-- ARGS`: run `steerer run ARGS` on a real interface.
    Run(demo::RunArgs),
    /// Unit tests, BPF_PROG_TEST_RUN tests and the lab integration tests.
    Test(test::TestArgs),
    /// Benchmarks, printed as ratios to baselines measured in the same run.
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Setup => setup::ensure_all(),
        Command::Run(args) => demo::run(args),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}
