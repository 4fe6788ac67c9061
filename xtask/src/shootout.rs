//! `cargo xtask bench lab`: the lab shoot-out (see `steerer_lab::shootout`).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use steerer_lab::shootout::{run_scenario, scenarios, RunOptions};

use crate::cmd::{cargo, status, workspace_root};

pub fn run(
    filter: &Option<String>,
    only: &Option<String>,
    variants: &[String],
    seconds: u64,
    rounds: usize,
    arrivals: Option<f64>,
) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the lab shoot-out builds network namespaces and attaches XDP: run as root");
    }
    if seconds == 0 || rounds == 0 {
        bail!("--lab-seconds and --rounds must be at least 1");
    }
    if arrivals.is_some_and(|r| !(r > 0.0 && r <= 1000.0)) {
        bail!("--arrivals must be a rate of requests per second in (0, 1000]");
    }
    println!("bench: building steerer (release) for the lab shoot-out");
    status(cargo().args(["build", "--release", "-p", "steerer-user", "--bins"]))?;
    std::env::set_var(
        "STEERER_BIN",
        workspace_root().join("target/release/steerer"),
    );
    let chosen: Vec<_> = scenarios()
        .into_iter()
        .filter(|s| filter.as_deref().is_none_or(|f| s.name.contains(f)))
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = scenarios().iter().map(|s| s.name).collect();
        bail!("--scenario {filter:?} matches none of {}", names.join(", "));
    }
    let opts = RunOptions {
        duration: Duration::from_secs(seconds),
        workers: 12,
        tick_secs: 5,
        only: only.clone(),
        variants: variants.to_vec(),
        arrivals,
    };
    // Ctrl-C or SIGTERM: the processes in the lab (the steerer, the
    // servers) are stopped and its namespaces removed by this handler, as a
    // failed round's would be.
    ctrlc::set_handler(|| {
        let n = steerer_lab::live::remove_live_namespaces();
        eprintln!("\nbench: interrupted; removed the lab ({n} namespaces)");
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;
    for sc in &chosen {
        let load = match arrivals {
            Some(r) => format!("open loop, {r} requests/s"),
            None => format!("{} closed loops", opts.workers),
        };
        println!(
            "bench: lab shoot-out, scenario {}: {} contenders x {rounds} rounds x {seconds} s, {load}",
            sc.name,
            steerer_lab::shootout::contenders(sc)
                .iter()
                .filter(|c| only.as_deref().is_none_or(|o| c.label().contains(o)))
                .count()
                + variants.len()
        );
        let per = run_scenario(sc, &opts, rounds)?;
        println!("\n{}", steerer_lab::report(sc, &per));
    }
    Ok(())
}
