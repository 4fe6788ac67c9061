//! Port lists in Tor's exit-policy summary syntax (`accept 80,443,8000-8100`
//! or `reject 1-65535`), as sets over ports 1-65535.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PortListError {
    #[error("expected `accept` or `reject`, found {0:?}")]
    Keyword(String),
    #[error("bad port range {0:?} (ports are 1-65535, ranges low-high)")]
    Range(String),
    #[error("missing port list after {0:?}")]
    Empty(String),
}

/// A set of ports 1-65535 (bit 0 unused). The 8 KiB of bits are shared
/// between clones until one changes (a pool of 100,000 hops that accept
/// every port holds one copy, not 800 MB).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PortSet {
    bits: std::sync::Arc<[u64; 1024]>,
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortSet({})", self.to_ranges())
    }
}

impl Default for PortSet {
    fn default() -> Self {
        Self::empty()
    }
}

impl PortSet {
    pub fn empty() -> Self {
        PortSet {
            bits: std::sync::Arc::new([0; 1024]),
        }
    }

    pub fn all() -> Self {
        static ALL: std::sync::OnceLock<PortSet> = std::sync::OnceLock::new();
        ALL.get_or_init(|| {
            let mut s = Self::empty();
            s.insert_range(1, 65535);
            s
        })
        .clone()
    }

    pub fn insert_range(&mut self, lo: u16, hi: u16) {
        for p in lo..=hi {
            self.insert(p);
        }
    }

    pub fn insert(&mut self, port: u16) {
        std::sync::Arc::make_mut(&mut self.bits)[port as usize / 64] |= 1 << (port % 64);
    }

    pub fn remove(&mut self, port: u16) {
        std::sync::Arc::make_mut(&mut self.bits)[port as usize / 64] &= !(1 << (port % 64));
    }

    pub fn contains(&self, port: u16) -> bool {
        self.bits[port as usize / 64] & (1 << (port % 64)) != 0
    }

    pub fn complement(&self) -> Self {
        let mut bits = [0u64; 1024];
        for (b, w) in bits.iter_mut().zip(self.bits.iter()) {
            *b = !w;
        }
        bits[0] &= !1; // port 0 is not a port
        PortSet {
            bits: std::sync::Arc::new(bits),
        }
    }

    pub fn len(&self) -> u32 {
        self.bits.iter().map(|w| w.count_ones()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        (1..=65535u16).filter(|&p| self.contains(p))
    }

    /// `80,443,8000-8100` (empty string for the empty set).
    pub fn to_ranges(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut run: Option<(u16, u16)> = None;
        for p in self.ports() {
            run = match run {
                Some((lo, hi)) if hi + 1 == p => Some((lo, p)),
                Some((lo, hi)) => {
                    out.push(fmt_range(lo, hi));
                    Some((p, p))
                }
                None => Some((p, p)),
            };
        }
        if let Some((lo, hi)) = run {
            out.push(fmt_range(lo, hi));
        }
        out.join(",")
    }

    /// Parse `accept LIST` / `reject LIST` into the accepted ports.
    pub fn parse_policy(text: &str) -> Result<PortSet, PortListError> {
        let text = text.trim();
        let (keyword, list) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let accept = match keyword {
            "accept" => true,
            "reject" => false,
            other => return Err(PortListError::Keyword(other.to_string())),
        };
        let list = list.trim();
        if list.is_empty() {
            return Err(PortListError::Empty(keyword.to_string()));
        }
        let mut set = PortSet::empty();
        for item in list.split(',') {
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (a, b),
                None => (item, item),
            };
            let bad = || PortListError::Range(item.to_string());
            let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
            let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
            if lo == 0 || hi < lo {
                return Err(bad());
            }
            set.insert_range(lo, hi);
        }
        Ok(if accept { set } else { set.complement() })
    }
}

fn fmt_range(lo: u16, hi: u16) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_and_reject_lists() {
        let a = PortSet::parse_policy("accept 20-23,43,443").unwrap();
        assert_eq!(a.len(), 6);
        assert!(a.contains(22) && a.contains(443) && !a.contains(80));
        assert_eq!(a.to_ranges(), "20-23,43,443");
        let r = PortSet::parse_policy("reject 25,119,135-139").unwrap();
        assert_eq!(r.len(), 65535 - 7);
        assert!(!r.contains(25) && r.contains(80) && !r.contains(0));
        assert!(PortSet::parse_policy("reject 1-65535").unwrap().is_empty());
    }

    #[test]
    fn malformed_lists_are_rejected_with_the_reason() {
        assert_eq!(
            PortSet::parse_policy("allow 80"),
            Err(PortListError::Keyword("allow".into()))
        );
        assert_eq!(
            PortSet::parse_policy("accept 90-80"),
            Err(PortListError::Range("90-80".into()))
        );
        assert_eq!(
            PortSet::parse_policy("accept 0"),
            Err(PortListError::Range("0".into()))
        );
        assert_eq!(
            PortSet::parse_policy("accept 70000"),
            Err(PortListError::Range("70000".into()))
        );
        assert_eq!(
            PortSet::parse_policy("accept"),
            Err(PortListError::Empty("accept".into()))
        );
    }
}
