//! Sizes of the kernel maps. They are compile-time constants because BPF map
//! definitions are static; user space validates its configuration against them.

/// Hop ids of the data plane (`0..MAX_HOPS`): the most hops the tables
/// can name at once. The pool may be larger; only hops that some table
/// names, or that flows point at, hold an id.
pub const MAX_HOPS: u32 = 1024;

/// Most hops of a pool (configuration plus hop directory).
pub const MAX_POOL_HOPS: usize = 1_000_000;

/// Selection classes (port sets) the slot-table map has room for.
pub const MAX_CLASSES: u32 = 32;

/// Largest slot table per class. Prime, so that `hash % slots` uses every slot.
pub const MAX_SLOT_COUNT: u32 = 65_537;

/// Entries of a new LRU flow table unless `--flow-table-size` says
/// otherwise (the object's size; at ~128 bytes per entry about 32 MiB of
/// kernel memory); the LRU evicts the least recently used flow first.
pub const FLOW_TABLE_DEFAULT: u32 = 1 << 18;

/// The flow table the flow-read and whole-tick benchmarks fill (4x the
/// default: the largest table the tick targets of issue 15 are set for).
pub const FLOW_TABLE_SIZE: u32 = 1 << 20;

/// Local addresses of the gateway that must never be steered.
pub const MAX_LOCAL_ADDRS: u32 = 256;

/// (hop, destination port) failover counters kept (LRU).
pub const MAX_FAILOVER_KEYS: u32 = 16384;

/// Hop id stored in a slot that has no hop (an empty table).
pub const NO_HOP: u32 = u32::MAX;

/// Destinations with a window (and slot table) of their own in the data
/// plane (SPEC 5.4); user space keeps at most this many and evicts the
/// least recently used.
pub const MAX_DEST_TABLES: u32 = 256;

/// Slots per destination table (prime; 100 x a window of 10 hops).
pub const DEST_SLOT_COUNT: u32 = 1021;

/// Destination tables live in the `SLOTS` map after the class tables, so a
/// lookup never has to choose between two maps (which would double the
/// verifier's paths in the failover walk).
pub const DEST_SLOTS_BASE: u32 = MAX_CLASSES * MAX_SLOT_COUNT;

/// Entries of the `SLOTS` map: every class table, then every destination
/// table.
pub const SLOTS_LEN: u32 = DEST_SLOTS_BASE + MAX_DEST_TABLES * DEST_SLOT_COUNT;
