//! The configuration's rules: every field in range, every hop well
//! formed; the error names the offending field and the range.

use std::collections::HashSet;

use steerer_common::limits::{MAX_HOPS, MAX_POOL_HOPS, MAX_SLOT_COUNT};

use super::{hop::validate_hop, invalid, Config, ConfigError};
use super::{
    MAX_FRESH_SECS, MAX_GROUP_TOLERANCE_MS, MAX_IDLE_SECS, MAX_MEMORY_SECS, MAX_NEW_FLOWS_PER_SEC,
    MAX_TICK_SECS,
};

impl Config {
    /// Check every rule; the error names the offending field.
    pub fn validate(&self, interface_exists: &dyn Fn(&str) -> bool) -> Result<(), ConfigError> {
        self.validate_timing()?;
        self.validate_policy()?;
        self.validate_directory()?;
        self.validate_pool(interface_exists)
    }

    /// The clocks: tick, memory, hold-downs, idle times.
    fn validate_timing(&self) -> Result<(), ConfigError> {
        if self.tick_secs == 0 || self.tick_secs > MAX_TICK_SECS {
            return Err(invalid(
                "tick_secs",
                format!(
                    "{} is out of range: 1..={MAX_TICK_SECS} seconds",
                    self.tick_secs
                ),
            ));
        }
        if self.memory_secs < self.tick_secs || self.memory_secs > MAX_MEMORY_SECS {
            return Err(invalid(
                "memory_secs",
                format!(
                    "{} is out of range: tick_secs ({})..={MAX_MEMORY_SECS} seconds",
                    self.memory_secs, self.tick_secs
                ),
            ));
        }
        if self.group_tolerance_ms > MAX_GROUP_TOLERANCE_MS {
            return Err(invalid(
                "group_tolerance_ms",
                format!(
                    "{} is out of range: 0..={MAX_GROUP_TOLERANCE_MS} ms",
                    self.group_tolerance_ms
                ),
            ));
        }
        if self.link_hold_down_secs > MAX_TICK_SECS {
            return Err(invalid(
                "link_hold_down_secs",
                format!(
                    "{} is out of range: 0..={MAX_TICK_SECS} seconds",
                    self.link_hold_down_secs
                ),
            ));
        }
        for (field, v) in [
            ("tcp_idle_secs", self.tcp_idle_secs),
            ("udp_idle_secs", self.udp_idle_secs),
            ("tcp_closed_secs", self.tcp_closed_secs),
        ] {
            if v == 0 || v > MAX_IDLE_SECS {
                return Err(invalid(
                    field,
                    format!("{v} is out of range: 1..={MAX_IDLE_SECS} seconds"),
                ));
            }
        }
        Ok(())
    }

    /// Shares, windows and their growth.
    fn validate_policy(&self) -> Result<(), ConfigError> {
        if !(self.max_share > 0.0 && self.max_share <= 1.0) {
            return Err(invalid("max_share", "must be in (0, 1]"));
        }
        if self.fail_after_secs == 0 || self.fail_after_secs > MAX_TICK_SECS {
            return Err(invalid(
                "fail_after_secs",
                format!(
                    "{} is out of range: 1..={MAX_TICK_SECS} seconds",
                    self.fail_after_secs
                ),
            ));
        }
        if self.failover_block_secs > MAX_TICK_SECS {
            return Err(invalid(
                "failover_block_secs",
                format!(
                    "{} is out of range: 0..={MAX_TICK_SECS} seconds",
                    self.failover_block_secs
                ),
            ));
        }
        // The class window grows to the data plane's hop ids less a reserve
        // at most (`Params::class_window_cap`).
        let cap = crate::policy::Params {
            hop_ids: MAX_HOPS,
            ..crate::policy::Params::default()
        }
        .class_window_cap();
        if self.window == 0 || self.window > cap {
            return Err(invalid("window", format!("must be 1..={cap}")));
        }
        if self.grow_after == 0 {
            return Err(invalid("grow_after", "must be at least 1 connection"));
        }
        if self.grow_by > MAX_HOPS as usize {
            return Err(invalid("grow_by", format!("must be 0..={MAX_HOPS}")));
        }
        if !(self.max_operator_share > 0.0 && self.max_operator_share <= 1.0) {
            return Err(invalid("max_operator_share", "must be in (0, 1]"));
        }
        Ok(())
    }

    /// The hop directory, its polling, the flood guard and freshness.
    fn validate_directory(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.hop_directory_url {
            if self.hop_directory.is_none() {
                return Err(invalid(
                    "hop_directory_url",
                    "needs hop_directory: the file each fetched version is written to",
                ));
            }
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(invalid(
                    "hop_directory_url",
                    format!("{url:?}: must be an http:// or https:// URL"),
                ));
            }
            if self.hop_directory_ca.is_some() && !url.starts_with("https://") {
                return Err(invalid(
                    "hop_directory_ca",
                    "only for an https:// hop_directory_url",
                ));
            }
            if self.hop_directory_poll_secs == 0 {
                return Err(invalid(
                    "hop_directory_poll_secs",
                    "must be at least 1 second",
                ));
            }
        }
        if self
            .new_flows_per_sec
            .is_some_and(|r| r > MAX_NEW_FLOWS_PER_SEC)
        {
            return Err(invalid(
                "new_flows_per_sec",
                format!("must be 0 (no limit) ..={MAX_NEW_FLOWS_PER_SEC}"),
            ));
        }
        if self.fresh_secs == 0 || self.fresh_secs > MAX_FRESH_SECS {
            return Err(invalid(
                "fresh_secs",
                format!(
                    "{} is out of range: 1..={MAX_FRESH_SECS} seconds",
                    self.fresh_secs
                ),
            ));
        }
        Ok(())
    }

    /// The hops themselves, the slot tables and the probes.
    fn validate_pool(&self, interface_exists: &dyn Fn(&str) -> bool) -> Result<(), ConfigError> {
        if self.hops.is_empty() {
            return Err(invalid("hop", "at least one [[hop]] is required"));
        }
        if self.hops.len() > MAX_POOL_HOPS {
            return Err(invalid(
                "hop",
                format!(
                    "{} hops configured (with the directory), at most {MAX_POOL_HOPS} supported",
                    self.hops.len()
                ),
            ));
        }
        if let Some(slots) = self.slot_count {
            let named = self.hops.len().min(MAX_HOPS as usize);
            if (slots as usize) < named || slots > MAX_SLOT_COUNT {
                return Err(invalid(
                    "slot_count",
                    format!(
                        "{slots} is out of range: need at least one slot per hop the tables can name ({named}) and at most {MAX_SLOT_COUNT}"
                    ),
                ));
            }
        }

        let mut names = HashSet::new();
        for (i, hop) in self.hops.iter().enumerate() {
            validate_hop(i, hop, &mut names, interface_exists)?;
        }
        if let Some(p) = &self.probe {
            p.validate(&self.hops)?;
        }
        Ok(())
    }
}
