//! Debug helper: build a lab, optionally start steerer, print the names and
//! hold everything for N seconds (default 120) before tearing down.
//! `cargo run -p steerer-lab --example hold_lab -- [hops] [secs] [nosteer]`
use steerer_lab::{steerer::SteererProcess, Lab, LabSpec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let hops: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(120);
    let steer = args.get(3).map(|s| s != "nosteer").unwrap_or(true);
    let lab = Lab::build(LabSpec::equal_hops(hops))?;
    println!("lab {} namespaces {:?}", lab.prefix, lab.namespaces());
    let _s = if steer {
        let cfg = lab.steerer_config(2, &[]);
        let p = SteererProcess::start(&lab, &cfg, &[], false)?;
        println!("steerer log {}", p.log_path.display());
        Some(p)
    } else {
        None
    };
    std::thread::sleep(std::time::Duration::from_secs(secs));
    Ok(())
}
