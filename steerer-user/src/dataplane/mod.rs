//! The kernel side as user space sees it: load the eBPF object
//! (`mod.rs`), attach it through pinned links (`attach`), read and write
//! its maps (`maps`), where pins live and whether a pin set fits this
//! build (`pins`), and read-only access for `steerer flows` (`pinned`).

mod attach;
pub mod batch;
mod flow_table;
mod maps;
mod pinned;
mod pinned_tables;
pub mod pins;
pub mod stats;

pub use pinned::PinnedMaps;
pub use pinned_tables::PinnedTables;
pub use pins::{ensure_bpffs, netns_id, pin_dir_for, pin_root, remove_pins, ShapeMismatch};

use std::path::{Path, PathBuf};

use aya::{
    maps::Map,
    programs::{Program, ProgramError, SchedClassifier, Xdp},
    Ebpf, EbpfLoader,
};
use thiserror::Error;

/// The compiled eBPF object, built by `build.rs` through aya-build.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steerer"));

/// Root of steerer's pins in bpffs: `<root>/<netns>/<iface>/`.
pub const PIN_ROOT: &str = "/sys/fs/bpf/steerer";

pub const XDP_PROGRAM: &str = "steerer_xdp";
pub const TC_PROGRAM: &str = "steerer_tc_reply";
/// The TC variant of the steering program (`--attach tc`).
pub const TC_STEER_PROGRAM: &str = "steerer_tc";

/// Pinned bpf links: they keep both programs attached when the daemon dies
/// (SIGKILL, crash), so established flows stay on their hops; a restart
/// swaps its freshly loaded programs into the same links atomically.
pub const XDP_LINK_PIN: &str = "link_xdp";
pub const TC_LINK_PIN: &str = "link_tc_egress";
pub const TC_STEER_LINK_PIN: &str = "link_tc_ingress";

/// How `attach` found the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// No pinned links: attached anew.
    New,
    /// Pinned links of an earlier run: programs replaced in place, with no
    /// moment in which the interface ran without steerer.
    Replaced,
}

/// Map names as the kernel (and bpftool) shows them.
pub mod map_names {
    pub const FLOWS: &str = "FLOWS";
    pub const SLOTS: &str = "SLOTS";
    pub const HOPS: &str = "HOPS";
    pub const HOP_DEVS: &str = "HOP_DEVS";
    pub const CONFIG: &str = "CONFIG";
    pub const STATS: &str = "STATS";
    pub const LOCAL_ADDRS: &str = "LOCAL_ADDRS";
    pub const FAILOVERS: &str = "FAILOVERS";
    pub const PORT_SETS: &str = "PORT_SETS";
    pub const DEST_TABLES: &str = "DEST_TABLES";
    pub const HOP_NAMES: &str = "HOP_NAMES";
    pub const NEW_FLOW_LIMIT: &str = "NEW_FLOW_LIMIT";
    pub const NEW_FLOW_BUCKETS: &str = "NEW_FLOW_BUCKETS";
    pub const HOP_STATS: &str = "HOP_STATS";
}

#[derive(Debug, Error)]
pub enum DataplaneError {
    #[error("{0}")]
    NoBpffs(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("loading the eBPF object (pins in {pin_dir}): {source}")]
    Load {
        pin_dir: String,
        source: Box<aya::EbpfError>,
    },
    #[error(
        "the maps pinned in {pin_dir} were made by a different steerer build ({}); \
         nothing was changed. Run with --fresh to start from empty maps (established \
         flows are steered afresh), or run the build that made them",
        mismatches.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("; ")
    )]
    IncompatiblePins {
        pin_dir: String,
        mismatches: Vec<pins::ShapeMismatch>,
    },
    #[error("program {name}: {source}")]
    Program {
        name: &'static str,
        source: Box<aya::programs::ProgramError>,
    },
    #[error("map {name}: {message}")]
    Map { name: &'static str, message: String },
    #[error("bpf link {path}: {message}")]
    Link { path: String, message: String },
}

fn link_err(path: &Path) -> impl Fn(String) -> DataplaneError + '_ {
    move |message| DataplaneError::Link {
        path: path.display().to_string(),
        message,
    }
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> DataplaneError {
    move |e| DataplaneError::Map {
        name,
        message: e.to_string(),
    }
}

fn prog_err(name: &'static str) -> impl Fn(aya::programs::ProgramError) -> DataplaneError {
    move |e| DataplaneError::Program {
        name,
        source: Box::new(e),
    }
}

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) XDP.
    Xdp,
    /// Generic (skb) XDP, for drivers without native support.
    XdpSkb,
    /// TC ingress (TCX): slower than XDP, but offers the `mark` action.
    Tc,
}

/// A loaded (and possibly attached) data plane.
pub struct Dataplane {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    /// The reader of the programs' rare error reports (aya-log), until the
    /// daemon takes it to read them as they come.
    logger: Option<DataplaneLogger>,
}

/// Reads the data plane's aya-log records into the `log` crate (tracing
/// takes them from there). Dropping it closes the ring buffer.
pub type DataplaneLogger = aya_log::EbpfLogger<&'static dyn log::Log>;

impl Dataplane {
    /// Load the object, creating or reusing the maps pinned in `pin_dir`.
    /// Pins whose shape differs from this build's maps are refused before
    /// anything is loaded (`pin_compat`). `flow_table_size` sizes a new
    /// flow table; a reused one keeps its size (`flow_table_entries`).
    pub fn load(pin_dir: &Path, flow_table_size: Option<u32>) -> Result<Self, DataplaneError> {
        ensure_bpffs()?;
        // A failed first load leaves nothing behind; pins of an earlier run
        // are never removed here.
        let created = !pin_dir.exists();
        let result = Self::load_into(pin_dir, flow_table_size);
        if result.is_err() && created {
            let _ = remove_pins(pin_dir);
        }
        result
    }

    fn load_into(pin_dir: &Path, flow_table_size: Option<u32>) -> Result<Self, DataplaneError> {
        std::fs::create_dir_all(pin_dir).map_err(|source| DataplaneError::Io {
            context: format!("creating {}", pin_dir.display()),
            source,
        })?;
        let mismatches =
            pins::check(EBPF_OBJECT, pin_dir).map_err(|message| DataplaneError::Map {
                name: "pinned maps",
                message,
            })?;
        if !mismatches.is_empty() {
            return Err(DataplaneError::IncompatiblePins {
                pin_dir: pin_dir.display().to_string(),
                mismatches,
            });
        }
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(pin_dir);
        if let Some(size) = flow_table_size {
            loader.map_max_entries(map_names::FLOWS, size);
        }
        let mut ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|source| DataplaneError::Load {
                pin_dir: pin_dir.display().to_string(),
                source: Box::new(source),
            })?;
        // The object has report statements, so the ring buffer is there;
        // without it steering works all the same, unreported.
        let logger = aya_log::EbpfLogger::init(&mut ebpf).ok();
        let mut dp = Dataplane {
            ebpf,
            pin_dir: pin_dir.to_owned(),
            logger,
        };
        dp.load_programs()?;
        Ok(dp)
    }

    fn load_programs(&mut self) -> Result<(), DataplaneError> {
        let xdp: &mut Xdp = program_mut(&mut self.ebpf, XDP_PROGRAM)?;
        xdp.load().map_err(prog_err(XDP_PROGRAM))?;
        let tc: &mut SchedClassifier = program_mut(&mut self.ebpf, TC_PROGRAM)?;
        tc.load().map_err(prog_err(TC_PROGRAM))?;
        let tc_steer: &mut SchedClassifier = program_mut(&mut self.ebpf, TC_STEER_PROGRAM)?;
        tc_steer.load().map_err(prog_err(TC_STEER_PROGRAM))?;
        Ok(())
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// The reader of the programs' rare error reports, once.
    pub fn take_logger(&mut self) -> Option<DataplaneLogger> {
        self.logger.take()
    }

    /// Entries of the flow table in the kernel: a reused pin keeps the
    /// size it was created with, whatever this run asked for.
    pub fn flow_table_entries(&self) -> Result<u32, DataplaneError> {
        let map = self.map(map_names::FLOWS)?;
        let info = match map {
            aya::maps::Map::LruHashMap(data) => data.info(),
            _ => {
                return Err(DataplaneError::Map {
                    name: map_names::FLOWS,
                    message: "not an LRU hash map".into(),
                })
            }
        };
        info.map(|i| i.max_entries())
            .map_err(map_err(map_names::FLOWS))
    }

    /// An XDP program of the object by name, loaded on first use: the
    /// steerer program or a reference program of the benchmark
    /// (`bench_xdp_pass`, `bench_parse_lookup`), which share this data
    /// plane's maps and are never attached by steerer itself.
    pub fn xdp_program_named(&mut self, name: &'static str) -> Result<&mut Xdp, DataplaneError> {
        let prog: &mut Xdp = program_mut(&mut self.ebpf, name)?;
        if prog.fd().is_err() {
            prog.load().map_err(prog_err(name))?;
        }
        Ok(prog)
    }

    /// The loaded XDP program (for BPF_PROG_TEST_RUN).
    pub fn xdp_program(&self) -> Result<&Xdp, DataplaneError> {
        program(&self.ebpf, XDP_PROGRAM)
    }

    /// The loaded TC steering program (for BPF_PROG_TEST_RUN).
    pub fn tc_steer_program(&self) -> Result<&SchedClassifier, DataplaneError> {
        program(&self.ebpf, TC_STEER_PROGRAM)
    }

    /// The loaded TC program (for BPF_PROG_TEST_RUN).
    pub fn tc_program(&self) -> Result<&SchedClassifier, DataplaneError> {
        program(&self.ebpf, TC_PROGRAM)
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut Map, DataplaneError> {
        self.ebpf.map_mut(name).ok_or(DataplaneError::Map {
            name,
            message: "not in the eBPF object".into(),
        })
    }

    fn map(&self, name: &'static str) -> Result<&Map, DataplaneError> {
        self.ebpf.map(name).ok_or(DataplaneError::Map {
            name,
            message: "not in the eBPF object".into(),
        })
    }
}

fn prog_missing(name: &'static str) -> DataplaneError {
    DataplaneError::Program {
        name,
        source: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
    }
}

/// A program of the object by name, as its type (`Xdp`, `SchedClassifier`).
fn program_mut<'a, P>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut P, DataplaneError>
where
    &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| prog_missing(name))?
        .try_into()
        .map_err(prog_err(name))
}

fn program<'a, P>(ebpf: &'a Ebpf, name: &'static str) -> Result<&'a P, DataplaneError>
where
    &'a P: TryFrom<&'a Program, Error = ProgramError>,
{
    ebpf.program(name)
        .ok_or_else(|| prog_missing(name))?
        .try_into()
        .map_err(prog_err(name))
}
