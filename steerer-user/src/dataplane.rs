//! The kernel side as user space sees it: load the eBPF object, attach it,
//! read and write its (pinned) maps.

use std::{
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, DevMap, HashMap, Map, MapData, PerCpuArray},
    programs::{
        links::{FdLink, PinnedLink},
        tc::{SchedClassifierLink, TcAttachType},
        xdp::XdpLink,
        Program, ProgramError, SchedClassifier, Xdp, XdpMode,
    },
    Ebpf, EbpfLoader,
};
use steerer_common::{
    flow::{DestKey, FailoverKey, LocalAddrKey},
    limits::{DEST_SLOTS_BASE, DEST_SLOT_COUNT, MAX_DEST_TABLES, MAX_HOPS, MAX_SLOT_COUNT},
    DataplaneConfig, FlowKey, FlowValue, HopEntry, StatReason,
};
use thiserror::Error;

/// The compiled eBPF object, built by `build.rs` through aya-build.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steerer"));

/// Root of steerer's pins in bpffs.
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
}

#[derive(Debug, Error)]
pub enum DataplaneError {
    #[error("bpffs is not mounted at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf, or run `cargo xtask setup`)")]
    NoBpffs,
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
        mismatches: Vec<crate::pin_compat::ShapeMismatch>,
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

/// Where the data plane of `iface` is pinned.
pub fn pin_dir_for(iface: &str) -> PathBuf {
    Path::new(PIN_ROOT).join(iface)
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

/// True when /sys/fs/bpf is a bpf filesystem.
pub fn bpffs_mounted() -> bool {
    nix::sys::statfs::statfs("/sys/fs/bpf")
        .map(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
        .unwrap_or(false)
}

/// A loaded (and possibly attached) data plane.
pub struct Dataplane {
    ebpf: Ebpf,
    pin_dir: PathBuf,
}

impl Dataplane {
    /// Load the object, creating or reusing the maps pinned in `pin_dir`.
    /// Pins whose shape differs from this build's maps are refused before
    /// anything is loaded (`pin_compat`). `flow_table_size` sizes a new
    /// flow table; a reused one keeps its size (`flow_table_entries`).
    pub fn load(pin_dir: &Path, flow_table_size: Option<u32>) -> Result<Self, DataplaneError> {
        if !bpffs_mounted() {
            return Err(DataplaneError::NoBpffs);
        }
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
        let mismatches = crate::pin_compat::check(EBPF_OBJECT, pin_dir).map_err(|message| {
            DataplaneError::Map {
                name: "pinned maps",
                message,
            }
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
        let ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|source| DataplaneError::Load {
                pin_dir: pin_dir.display().to_string(),
                source: Box::new(source),
            })?;
        let mut dp = Dataplane {
            ebpf,
            pin_dir: pin_dir.to_owned(),
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

    /// Attach the steering program to `iface` ingress (XDP, or TC with
    /// `AttachMode::Tc`) and the reply accountant to its TC egress (TCX),
    /// through bpf links pinned next to the maps. Links pinned by an earlier
    /// run are reused: the new programs replace the old ones atomically. A
    /// stale pin (its interface gone) is replaced by a new attachment, and
    /// the other steering variant's pin, if a run used it, is removed.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> Result<Attachment, DataplaneError> {
        let xdp_pin = self.pin_dir.join(XDP_LINK_PIN);
        let steer_tc_pin = self.pin_dir.join(TC_STEER_LINK_PIN);
        let steering_replaced = match mode {
            AttachMode::Xdp | AttachMode::XdpSkb => {
                let replaced = self.attach_xdp(iface, mode, &xdp_pin)?;
                remove_link_pin(&steer_tc_pin)?;
                replaced
            }
            AttachMode::Tc => {
                let replaced = self.attach_tc(
                    TC_STEER_PROGRAM,
                    iface,
                    TcAttachType::Ingress,
                    &steer_tc_pin,
                )?;
                remove_link_pin(&xdp_pin)?;
                replaced
            }
        };
        let tc_pin = self.pin_dir.join(TC_LINK_PIN);
        let reply_replaced = self.attach_tc(TC_PROGRAM, iface, TcAttachType::Egress, &tc_pin)?;
        Ok(if steering_replaced && reply_replaced {
            Attachment::Replaced
        } else {
            Attachment::New
        })
    }

    /// Attach (or take over the pinned link of) the XDP program; `true`
    /// when a pinned link was taken over.
    fn attach_xdp(
        &mut self,
        iface: &str,
        mode: AttachMode,
        pin: &Path,
    ) -> Result<bool, DataplaneError> {
        let xdp: &mut Xdp = program_mut(&mut self.ebpf, XDP_PROGRAM)?;
        let taken = take_over_pinned_link(pin, "XDP", |fd| {
            let link = XdpLink::try_from(fd).map_err(|e| e.to_string())?;
            xdp.attach_to_link(link)
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        if taken {
            return Ok(true);
        }
        let xdp_mode = match mode {
            AttachMode::XdpSkb => XdpMode::Skb,
            _ => XdpMode::Driver,
        };
        let id = xdp.attach(iface, xdp_mode).map_err(prog_err(XDP_PROGRAM))?;
        let link = xdp.take_link(id).map_err(prog_err(XDP_PROGRAM))?;
        pin_link(
            pin,
            FdLink::try_from(link).map_err(|e| format!("not a bpf link (kernel too old?): {e}")),
        )?;
        Ok(false)
    }

    /// As `attach_xdp`, for a TC program at `attach_type` (TCX links).
    fn attach_tc(
        &mut self,
        name: &'static str,
        iface: &str,
        attach_type: TcAttachType,
        pin: &Path,
    ) -> Result<bool, DataplaneError> {
        let tc: &mut SchedClassifier = program_mut(&mut self.ebpf, name)?;
        let taken = take_over_pinned_link(pin, "TC", |fd| {
            let link = SchedClassifierLink::try_from(fd).map_err(|e| e.to_string())?;
            tc.attach_to_link(link).map(drop).map_err(|e| e.to_string())
        })?;
        if taken {
            return Ok(true);
        }
        let id = tc.attach(iface, attach_type).map_err(prog_err(name))?;
        let link = tc.take_link(id).map_err(prog_err(name))?;
        pin_link(
            pin,
            FdLink::try_from(link)
                .map_err(|e| format!("not a TCX link (kernel older than 6.6?): {e}")),
        )?;
        Ok(false)
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

    pub fn config(&self) -> Result<DataplaneConfig, DataplaneError> {
        let a: Array<_, DataplaneConfig> =
            Array::try_from(self.map(map_names::CONFIG)?).map_err(map_err(map_names::CONFIG))?;
        a.get(&0, 0).map_err(map_err(map_names::CONFIG))
    }

    pub fn set_config(&mut self, cfg: &DataplaneConfig) -> Result<(), DataplaneError> {
        let mut a: Array<_, DataplaneConfig> = Array::try_from(self.map_mut(map_names::CONFIG)?)
            .map_err(map_err(map_names::CONFIG))?;
        a.set(0, cfg, 0).map_err(map_err(map_names::CONFIG))
    }

    /// Install hop `id`: its action parameters and its redirect target.
    pub fn set_hop(&mut self, id: u32, entry: &HopEntry) -> Result<(), DataplaneError> {
        if id >= MAX_HOPS {
            return Err(DataplaneError::Map {
                name: map_names::HOPS,
                message: format!("hop id {id} >= {MAX_HOPS}"),
            });
        }
        if entry.ifindex != 0 {
            let mut d = DevMap::try_from(self.map_mut(map_names::HOP_DEVS)?)
                .map_err(map_err(map_names::HOP_DEVS))?;
            d.set(id, entry.ifindex, None, 0)
                .map_err(|e| DataplaneError::Map {
                    name: map_names::HOP_DEVS,
                    message: e.to_string(),
                })?;
        }
        let mut a: Array<_, HopEntry> =
            Array::try_from(self.map_mut(map_names::HOPS)?).map_err(map_err(map_names::HOPS))?;
        a.set(id, entry, 0).map_err(map_err(map_names::HOPS))
    }

    pub fn hop(&self, id: u32) -> Result<HopEntry, DataplaneError> {
        let a: Array<_, HopEntry> =
            Array::try_from(self.map(map_names::HOPS)?).map_err(map_err(map_names::HOPS))?;
        a.get(&id, 0).map_err(map_err(map_names::HOPS))
    }

    /// Write class `class`'s slot table. With `previous`, only changed slots
    /// are written (a tick usually moves few).
    pub fn write_slots(
        &mut self,
        class: u32,
        table: &[u32],
        previous: Option<&[u32]>,
    ) -> Result<usize, DataplaneError> {
        if table.len() > MAX_SLOT_COUNT as usize {
            return Err(DataplaneError::Map {
                name: map_names::SLOTS,
                message: format!("{} slots > {MAX_SLOT_COUNT}", table.len()),
            });
        }
        self.write_slot_range(class * MAX_SLOT_COUNT, table, previous)
    }

    /// Write `table` into `SLOTS` from `base`; with `previous`, only the
    /// slots that changed. Returns how many were written.
    fn write_slot_range(
        &mut self,
        base: u32,
        table: &[u32],
        previous: Option<&[u32]>,
    ) -> Result<usize, DataplaneError> {
        let mut a: Array<_, u32> =
            Array::try_from(self.map_mut(map_names::SLOTS)?).map_err(map_err(map_names::SLOTS))?;
        let mut written = 0;
        for (i, &hop) in table.iter().enumerate() {
            if previous.is_some_and(|p| p.get(i) == Some(&hop)) {
                continue;
            }
            a.set(base + i as u32, hop, 0)
                .map_err(map_err(map_names::SLOTS))?;
            written += 1;
        }
        Ok(written)
    }

    /// Write destination table `index` (`DEST_SLOT_COUNT` slots; with
    /// `previous`, only changed slots) and point `dest` at it. The table is
    /// written before the pointer, so no flow ever sees it half-written.
    pub fn set_destination_table(
        &mut self,
        dest: &DestKey,
        index: u32,
        table: &[u32],
        previous: Option<&[u32]>,
    ) -> Result<usize, DataplaneError> {
        if index >= MAX_DEST_TABLES || table.len() != DEST_SLOT_COUNT as usize {
            return Err(DataplaneError::Map {
                name: map_names::SLOTS,
                message: format!(
                    "table {index} of {} slots (need index < {MAX_DEST_TABLES}, {DEST_SLOT_COUNT} slots)",
                    table.len()
                ),
            });
        }
        let written =
            self.write_slot_range(DEST_SLOTS_BASE + index * DEST_SLOT_COUNT, table, previous)?;
        let mut m: HashMap<_, DestKey, u32> =
            HashMap::try_from(self.map_mut(map_names::DEST_TABLES)?)
                .map_err(map_err(map_names::DEST_TABLES))?;
        m.insert(dest, index, 0)
            .map_err(map_err(map_names::DEST_TABLES))?;
        Ok(written)
    }

    /// Forget `dest`'s own table: its new flows use their port set's table.
    pub fn remove_destination(&mut self, dest: &DestKey) -> Result<(), DataplaneError> {
        let mut m: HashMap<_, DestKey, u32> =
            HashMap::try_from(self.map_mut(map_names::DEST_TABLES)?)
                .map_err(map_err(map_names::DEST_TABLES))?;
        match m.remove(dest) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(map_err(map_names::DEST_TABLES)(e)),
        }
    }

    /// Every destination with its own table (from an earlier run's pins).
    pub fn destinations(&self) -> Result<Vec<(DestKey, u32)>, DataplaneError> {
        read_hash(self.map(map_names::DEST_TABLES)?, map_names::DEST_TABLES)
    }

    pub fn read_slots(&self, class: u32, count: u32) -> Result<Vec<u32>, DataplaneError> {
        read_slots(self.map(map_names::SLOTS)?, class, count)
    }

    pub fn set_local_addrs(&mut self, addrs: &[LocalAddrKey]) -> Result<(), DataplaneError> {
        let mut m: HashMap<_, LocalAddrKey, u8> =
            HashMap::try_from(self.map_mut(map_names::LOCAL_ADDRS)?)
                .map_err(map_err(map_names::LOCAL_ADDRS))?;
        let old: Vec<LocalAddrKey> = m.keys().filter_map(Result::ok).collect();
        for k in old.iter().filter(|k| !addrs.contains(k)) {
            m.remove(k).map_err(map_err(map_names::LOCAL_ADDRS))?;
        }
        for a in addrs {
            m.insert(a, 1, 0).map_err(map_err(map_names::LOCAL_ADDRS))?;
        }
        Ok(())
    }

    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowValue)>, DataplaneError> {
        read_flows(self.map(map_names::FLOWS)?)
    }

    pub fn stats(&self) -> Result<Vec<(StatReason, u64)>, DataplaneError> {
        read_stats(self.map(map_names::STATS)?)
    }

    /// Delete these flows' entries (a reset, SPEC 5.5: their next packet,
    /// such as the sender's retry, is steered afresh). Returns how many
    /// were still there.
    pub fn remove_flows(&mut self, keys: &[FlowKey]) -> Result<usize, DataplaneError> {
        let mut m: HashMap<_, FlowKey, FlowValue> =
            HashMap::try_from(self.map_mut(map_names::FLOWS)?)
                .map_err(map_err(map_names::FLOWS))?;
        let mut removed = 0;
        for k in keys {
            match m.remove(k) {
                Ok(()) => removed += 1,
                // Evicted or ended meanwhile.
                Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(map_names::FLOWS)(e)),
            }
        }
        Ok(removed)
    }

    /// Fill the port -> port-set array (`sets[port]`, each below
    /// `MAX_CLASSES`); only entries that differ from the map are written.
    pub fn set_port_sets(&mut self, sets: &[u8]) -> Result<(), DataplaneError> {
        if sets.len() != 65536 {
            return Err(DataplaneError::Map {
                name: map_names::PORT_SETS,
                message: format!("expected 65536 entries, got {}", sets.len()),
            });
        }
        if let Some(bad) = sets
            .iter()
            .find(|&&s| s as u32 >= steerer_common::limits::MAX_CLASSES)
        {
            return Err(DataplaneError::Map {
                name: map_names::PORT_SETS,
                message: format!(
                    "port set {bad} is beyond the {} slot tables",
                    steerer_common::limits::MAX_CLASSES
                ),
            });
        }
        let mut a: Array<_, u8> = Array::try_from(self.map_mut(map_names::PORT_SETS)?)
            .map_err(map_err(map_names::PORT_SETS))?;
        for (port, &set) in sets.iter().enumerate() {
            let port = port as u32;
            if a.get(&port, 0).map_err(map_err(map_names::PORT_SETS))? != set {
                a.set(port, set, 0).map_err(map_err(map_names::PORT_SETS))?;
            }
        }
        Ok(())
    }

    /// Fast-failover counters: (hop moved off, destination port) -> flows.
    pub fn failovers(&self) -> Result<Vec<(FailoverKey, u64)>, DataplaneError> {
        read_failovers(self.map(map_names::FAILOVERS)?)
    }

    /// Remove every pin of this data plane (maps stay alive while loaded).
    pub fn unpin(&self) -> Result<(), DataplaneError> {
        remove_pins(&self.pin_dir)
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

/// Take over the link an earlier run pinned at `pin` (`take_over` swaps
/// this run's program into it); `true` when that worked. A stale pin (its
/// interface gone, or not such a link) is removed and `false` returned.
fn take_over_pinned_link(
    pin: &Path,
    what: &str,
    take_over: impl FnOnce(FdLink) -> Result<(), String>,
) -> Result<bool, DataplaneError> {
    if !pin.exists() {
        return Ok(false);
    }
    let result = PinnedLink::from_pin(pin)
        .map_err(|e| e.to_string())
        .and_then(|p| take_over(FdLink::from(p)));
    match result {
        Ok(()) => Ok(true),
        Err(e) => {
            tracing::warn!(pin = %pin.display(), error = %e, "stale {what} link pin; attaching anew");
            remove_link_pin(pin)?;
            Ok(false)
        }
    }
}

/// Pin a freshly attached link next to the maps.
fn pin_link(pin: &Path, link: Result<FdLink, String>) -> Result<(), DataplaneError> {
    link.map_err(link_err(pin))?
        .pin(pin)
        .map_err(|e| e.to_string())
        .map_err(link_err(pin))?;
    Ok(())
}

/// Unpin one link (detaching its program once nothing else holds it).
fn remove_link_pin(pin: &Path) -> Result<(), DataplaneError> {
    match std::fs::remove_file(pin) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DataplaneError::Io {
            context: format!("removing {}", pin.display()),
            source,
        }),
    }
}

/// Delete a pin directory and everything in it (missing is fine).
pub fn remove_pins(dir: &Path) -> Result<(), DataplaneError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(DataplaneError::Io {
                context: format!("removing {}", dir.display()),
                source,
            })
        }
    }
    // Drop the parent too when this was its last data plane.
    if let Some(parent) = dir.parent() {
        if parent == Path::new(PIN_ROOT) {
            let _ = std::fs::remove_dir(parent);
        }
    }
    Ok(())
}

fn read_flows(map: &Map) -> Result<Vec<(FlowKey, FlowValue)>, DataplaneError> {
    read_hash(map, map_names::FLOWS)
}

fn read_failovers(map: &Map) -> Result<Vec<(FailoverKey, u64)>, DataplaneError> {
    read_hash(map, map_names::FAILOVERS)
}

/// Every entry of a (LRU) hash map.
fn read_hash<K: aya::Pod, V: aya::Pod>(
    map: &Map,
    name: &'static str,
) -> Result<Vec<(K, V)>, DataplaneError> {
    let m: HashMap<_, K, V> = HashMap::try_from(map).map_err(map_err(name))?;
    let mut out = Vec::new();
    for item in m.iter() {
        match item {
            Ok(kv) => out.push(kv),
            // An LRU entry evicted between `next_key` and `lookup`: skip it.
            Err(aya::maps::MapError::KeyNotFound) => continue,
            Err(e) => return Err(map_err(name)(e)),
        }
    }
    Ok(out)
}

fn read_stats(map: &Map) -> Result<Vec<(StatReason, u64)>, DataplaneError> {
    let a: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(map_err(map_names::STATS))?;
    StatReason::ALL
        .iter()
        .map(|&r| {
            let v = a.get(&(r as u32), 0).map_err(map_err(map_names::STATS))?;
            Ok((r, v.iter().sum()))
        })
        .collect()
}

fn read_slots(map: &Map, class: u32, count: u32) -> Result<Vec<u32>, DataplaneError> {
    let a: Array<_, u32> = Array::try_from(map).map_err(map_err(map_names::SLOTS))?;
    (0..count)
        .map(|i| {
            a.get(&(class * MAX_SLOT_COUNT + i), 0)
                .map_err(map_err(map_names::SLOTS))
        })
        .collect()
}

/// Read-only access to the pinned maps of a running (or crashed) steerer,
/// for `steerer flows`, `steerer stats` and tests.
pub struct PinnedMaps {
    dir: PathBuf,
}

impl PinnedMaps {
    pub fn open(iface: &str) -> Result<Self, DataplaneError> {
        Self::open_dir(&pin_dir_for(iface))
    }

    pub fn open_dir(dir: &Path) -> Result<Self, DataplaneError> {
        if !dir.join(map_names::FLOWS).exists() {
            return Err(DataplaneError::Io {
                context: format!(
                    "no steerer maps pinned in {} (is `steerer run` attached there?)",
                    dir.display()
                ),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        Ok(PinnedMaps {
            dir: dir.to_owned(),
        })
    }

    fn map(&self, name: &'static str) -> Result<Map, DataplaneError> {
        let data = MapData::from_pin(self.dir.join(name)).map_err(map_err(name))?;
        let _ = data.fd().as_fd();
        Map::from_map_data(data).map_err(map_err(name))
    }

    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowValue)>, DataplaneError> {
        read_flows(&self.map(map_names::FLOWS)?)
    }

    pub fn stats(&self) -> Result<Vec<(StatReason, u64)>, DataplaneError> {
        read_stats(&self.map(map_names::STATS)?)
    }

    pub fn failovers(&self) -> Result<Vec<(FailoverKey, u64)>, DataplaneError> {
        read_failovers(&self.map(map_names::FAILOVERS)?)
    }

    pub fn config(&self) -> Result<DataplaneConfig, DataplaneError> {
        let m = self.map(map_names::CONFIG)?;
        let a: Array<_, DataplaneConfig> =
            Array::try_from(&m).map_err(map_err(map_names::CONFIG))?;
        a.get(&0, 0).map_err(map_err(map_names::CONFIG))
    }

    pub fn slots(&self, class: u32) -> Result<Vec<u32>, DataplaneError> {
        let count = self.config()?.slot_count;
        read_slots(&self.map(map_names::SLOTS)?, class, count)
    }

    /// Every destination with a table of its own, and that table.
    pub fn destination_tables(&self) -> Result<Vec<(DestKey, Vec<u32>)>, DataplaneError> {
        let dests: Vec<(DestKey, u32)> =
            read_hash(&self.map(map_names::DEST_TABLES)?, map_names::DEST_TABLES)?;
        let slots = self.map(map_names::SLOTS)?;
        let a: Array<_, u32> = Array::try_from(&slots).map_err(map_err(map_names::SLOTS))?;
        dests
            .into_iter()
            .map(|(k, index)| {
                let base = DEST_SLOTS_BASE + index * DEST_SLOT_COUNT;
                let table = (0..DEST_SLOT_COUNT)
                    .map(|i| a.get(&(base + i), 0).map_err(map_err(map_names::SLOTS)))
                    .collect::<Result<Vec<u32>, _>>()?;
                Ok((k, table))
            })
            .collect()
    }
}
