//! The single-entry config map written by user space at start-up.

/// Data-plane configuration (index 0 of the `CONFIG` array).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataplaneConfig {
    /// 128-bit SipHash key; random per start unless maps are reused.
    pub hash_key: [u64; 2],
    /// Slots in use per class table (`<= MAX_SLOT_COUNT`); 0 = not ready, pass.
    pub slot_count: u32,
    /// `CONFIG_*` flags.
    pub flags: u32,
}

/// The control plane has written the tables; steering may start.
pub const CONFIG_READY: u32 = 1;
