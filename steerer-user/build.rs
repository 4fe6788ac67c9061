//! Builds the eBPF object from `steerer-ebpf` with aya-build (nightly,
//! `-Z build-std=core`, bpf-linker). `cargo xtask setup` installs what this
//! needs; the error below says so when something is missing.

use anyhow::{anyhow, Context as _};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("steerer-user has no parent directory"))?
        .join("steerer-ebpf");
    let root = root
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", root.display()))?;
    println!("cargo:rerun-if-changed=../steerer-common/src");
    // `--features bench` adds the benchmark's reference programs to the
    // object; a production build never carries them.
    let features: &[&str] = if std::env::var_os("CARGO_FEATURE_BENCH").is_some() {
        &["bench"]
    } else {
        &[]
    };
    aya_build::build_ebpf(
        [Package {
            name: "steerer-ebpf",
            root_dir: root,
            features,
            ..Default::default()
        }],
        Toolchain::default(),
    )
    .context(
        "building the eBPF programs failed; run `cargo xtask setup` to install \
         nightly rust-src and bpf-linker",
    )
}
