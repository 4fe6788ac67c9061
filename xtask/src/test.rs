//! `cargo xtask test`: everything, in the order that fails fastest.

use anyhow::{bail, Result};
use clap::Args;

use crate::{
    cmd::{cargo, status, workspace_root},
    setup,
};

#[derive(Args)]
pub struct TestArgs {
    /// Skip the network-namespace lab tests (they take a few minutes).
    #[arg(long)]
    no_lab: bool,
    /// Only run tests whose name contains this (passed to every test binary).
    filter: Option<String>,
}

pub fn run(args: TestArgs) -> Result<()> {
    setup::ensure_all()?;
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the BPF_PROG_TEST_RUN and lab tests load eBPF programs and create network \
             namespaces: run `cargo xtask test` as root"
        );
    }
    // The binary the lab tests start (and the eBPF object inside it).
    println!("test: building steerer");
    status(cargo().args(["build", "-p", "steerer-user", "--bins"]))?;
    let steerer = workspace_root().join("target/debug/steerer");

    let filter: Vec<String> = args.filter.into_iter().collect();
    println!("test: unit, property and BPF_PROG_TEST_RUN tests");
    status(
        cargo()
            .args([
                "test",
                "-p",
                "steerer-common",
                "-p",
                "steerer-user",
                "-p",
                "xtask",
            ])
            .args(["--lib", "--bins", "--tests", "--"])
            .args(&filter),
    )?;
    if args.no_lab {
        println!("test: lab tests skipped (--no-lab)");
        return Ok(());
    }
    println!("test: lab integration tests (network namespaces, one at a time)");
    status(
        cargo()
            .args(["test", "-p", "steerer-lab", "--", "--test-threads=1"])
            .args(&filter)
            .env("STEERER_BIN", &steerer),
    )?;
    println!("test: all passed");
    Ok(())
}
