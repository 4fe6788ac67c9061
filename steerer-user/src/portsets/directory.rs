//! Parsers for a microdesc-flavoured Tor consensus (`r`, `m`, `s`, `w`,
//! `bandwidth-weights`) and for microdescriptors (`p`, `p6`, `family`),
//! joined by microdescriptor digest into the list of usable exits.
//!
//! Entries that cannot be used are skipped and counted by reason, with the
//! line of the first one; a file that is not what it claims to be is an
//! error naming the line.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::ports::PortSet;

#[derive(Debug, Error)]
pub enum DirectoryError {
    #[error("{file}: line {line}: {message}")]
    Malformed {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
}

/// Entries left out, by reason: (count, first line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped(pub BTreeMap<String, (usize, usize)>);

impl Skipped {
    fn add(&mut self, reason: impl Into<String>, line: usize) {
        self.0.entry(reason.into()).or_insert((0, line)).0 += 1;
    }

    /// Add another file's skips (first lines stay those seen first).
    fn absorb(&mut self, other: &Skipped) {
        for (reason, &(n, line)) in &other.0 {
            self.0.entry(reason.clone()).or_insert((0, line)).0 += n;
        }
    }

    pub fn total(&self) -> usize {
        self.0.values().map(|(n, _)| n).sum()
    }
}

/// One relay entry of the consensus.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsensusRelay {
    pub nickname: String,
    /// Base64 identity (the `r` line's second field).
    pub identity: String,
    /// Base64 SHA-256 of the microdescriptor (the `m` line).
    pub microdesc: String,
    pub flags: Vec<String>,
    /// Consensus weight (`w Bandwidth=`).
    pub bandwidth: u64,
    /// Line of the `r` line.
    pub line: usize,
}

impl ConsensusRelay {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Consensus {
    pub relays: Vec<ConsensusRelay>,
    /// `bandwidth-weights` (Wxx -> value out of 10000).
    pub weights: BTreeMap<String, i64>,
    pub skipped: Skipped,
}

impl Consensus {
    pub fn parse(text: &str, file: &str) -> Result<Consensus, DirectoryError> {
        let malformed = |line: usize, message: String| DirectoryError::Malformed {
            file: file.to_string(),
            line,
            message,
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, "network-status-version 3 microdesc")) => {}
            Some((n, other)) => {
                return Err(malformed(
                    n,
                    format!("expected `network-status-version 3 microdesc`, found {other:?}"),
                ))
            }
            None => return Err(malformed(1, "empty file".into())),
        }
        let mut c = Consensus::default();
        // The entry being read and whether it is still good.
        let mut current: Option<(ConsensusRelay, Option<String>)> = None;
        let finish = |cur: Option<(ConsensusRelay, Option<String>)>, c: &mut Consensus| {
            if let Some((relay, problem)) = cur {
                let problem = problem.or_else(|| {
                    if relay.microdesc.is_empty() {
                        Some("entry without an `m` line".to_string())
                    } else if relay.flags.is_empty() {
                        Some("entry without an `s` line".to_string())
                    } else {
                        None
                    }
                });
                match problem {
                    Some(p) => c.skipped.add(p, relay.line),
                    None => c.relays.push(relay),
                }
            }
        };
        for (n, line) in lines {
            let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
            match keyword {
                "r" => {
                    finish(current.take(), &mut c);
                    let f: Vec<&str> = rest.split(' ').collect();
                    let relay = ConsensusRelay {
                        nickname: f.first().unwrap_or(&"").to_string(),
                        identity: f.get(1).unwrap_or(&"").to_string(),
                        microdesc: String::new(),
                        flags: Vec::new(),
                        bandwidth: 0,
                        line: n,
                    };
                    let problem = (f.len() != 7)
                        .then(|| format!("`r` line with {} fields instead of 7", f.len()));
                    current = Some((relay, problem));
                }
                "m" | "s" | "w" if current.is_none() => {
                    return Err(malformed(
                        n,
                        format!("`{keyword}` line outside a relay entry"),
                    ));
                }
                "m" => {
                    if let Some((r, _)) = current.as_mut() {
                        r.microdesc = rest.trim().to_string();
                    }
                }
                "s" => {
                    if let Some((r, _)) = current.as_mut() {
                        r.flags = rest.split(' ').map(str::to_string).collect();
                    }
                }
                "w" => {
                    if let Some((r, problem)) = current.as_mut() {
                        let bw = rest
                            .split(' ')
                            .find_map(|kv| kv.strip_prefix("Bandwidth="))
                            .and_then(|v| v.parse().ok());
                        match bw {
                            Some(bw) => r.bandwidth = bw,
                            None => *problem = Some("`w` line without a valid Bandwidth=".into()),
                        }
                    }
                }
                "directory-footer" => {
                    finish(current.take(), &mut c);
                }
                "bandwidth-weights" => {
                    for kv in rest.split(' ') {
                        let (k, v) = kv.split_once('=').ok_or_else(|| {
                            malformed(n, format!("bandwidth-weights item {kv:?} is not K=V"))
                        })?;
                        let v: i64 = v.parse().map_err(|_| {
                            malformed(n, format!("bandwidth-weights value {v:?} is not a number"))
                        })?;
                        c.weights.insert(k.to_string(), v);
                    }
                }
                _ => {}
            }
        }
        finish(current.take(), &mut c);
        if c.relays.is_empty() {
            return Err(malformed(1, "no usable relay entries".into()));
        }
        Ok(c)
    }
}

/// The parts of a microdescriptor steerer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Microdesc {
    /// IPv4 exit ports (`p`); absent means none.
    pub ports: PortSet,
    /// IPv6 exit ports (`p6`), if given.
    pub ports6: Option<PortSet>,
    pub family: Vec<String>,
    pub line: usize,
}

/// Microdescriptors by base64 SHA-256 digest.
#[derive(Debug, Clone, Default)]
pub struct Microdescs {
    pub by_digest: HashMap<String, Microdesc>,
    pub skipped: Skipped,
}

impl Microdescs {
    /// Add the descriptors of one file (annotations `@...` are not part of
    /// a descriptor or its digest).
    pub fn parse_into(&mut self, text: &str, file: &str) -> Result<(), DirectoryError> {
        // (byte start, byte end, first line) of every descriptor: from an
        // `onion-key` line to the next `onion-key` or annotation.
        let mut ranges: Vec<(usize, usize, usize)> = Vec::new();
        let mut open: Option<(usize, usize)> = None;
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let starts = line.starts_with("onion-key");
            if starts || line.starts_with('@') {
                if let Some((s, l)) = open.take() {
                    ranges.push((s, offset, l));
                }
                if starts {
                    open = Some((offset, i + 1));
                }
            }
            offset += line.len();
        }
        if let Some((s, l)) = open {
            ranges.push((s, offset, l));
        }
        if ranges.is_empty() && !text.trim().is_empty() {
            return Err(DirectoryError::Malformed {
                file: file.to_string(),
                line: 1,
                message: "no microdescriptor (`onion-key` line) found".into(),
            });
        }
        for (start, end, line) in ranges {
            let body = &text[start..end];
            let digest = base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(Sha256::digest(body.as_bytes()));
            match parse_microdesc(body, line) {
                Ok(md) => {
                    self.by_digest.insert(digest, md);
                }
                Err((reason, at)) => self.skipped.add(reason, at),
            }
        }
        Ok(())
    }
}

fn parse_microdesc(body: &str, first_line: usize) -> Result<Microdesc, (String, usize)> {
    let mut md = Microdesc {
        ports: PortSet::empty(),
        ports6: None,
        family: Vec::new(),
        line: first_line,
    };
    let mut has_key_end = false;
    for (i, line) in body.lines().enumerate() {
        let n = first_line + i;
        let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
        match keyword {
            "-----END" => has_key_end = true,
            "p" => {
                md.ports =
                    PortSet::parse_policy(rest).map_err(|e| (format!("bad `p` line: {e}"), n))?;
            }
            "p6" => {
                md.ports6 = Some(
                    PortSet::parse_policy(rest).map_err(|e| (format!("bad `p6` line: {e}"), n))?,
                );
            }
            "family" => md.family = rest.split(' ').map(str::to_string).collect(),
            _ => {}
        }
    }
    if !has_key_end {
        return Err((
            "truncated descriptor (onion key never ends)".into(),
            first_line,
        ));
    }
    Ok(md)
}

/// An exit usable for port sets: Exit flag, not BadExit, with its
/// microdescriptor.
#[derive(Debug, Clone)]
pub struct Exit {
    pub nickname: String,
    pub identity: String,
    /// Consensus bandwidth times the exit-position weight (Wee, or Wed for
    /// Guard+Exit relays) / 10000: the share of exit traffic Tor clients
    /// would give it.
    pub weight: f64,
    pub ports: PortSet,
    pub ports6: Option<PortSet>,
    pub family: Vec<String>,
}

/// Join consensus and microdescriptors.
pub fn exits(consensus: &Consensus, mds: &Microdescs) -> (Vec<Exit>, Skipped) {
    let mut skipped = Skipped::default();
    let w = |k: &str| consensus.weights.get(k).copied().unwrap_or(10000) as f64 / 10000.0;
    let mut out = Vec::new();
    for r in &consensus.relays {
        if !r.has_flag("Exit") {
            continue;
        }
        if r.has_flag("BadExit") {
            skipped.add("BadExit flag", r.line);
            continue;
        }
        let Some(md) = mds.by_digest.get(&r.microdesc) else {
            skipped.add("no microdescriptor for the `m` digest", r.line);
            continue;
        };
        let position = if r.has_flag("Guard") {
            w("Wed")
        } else {
            w("Wee")
        };
        out.push(Exit {
            nickname: r.nickname.clone(),
            identity: r.identity.clone(),
            weight: r.bandwidth as f64 * position,
            ports: md.ports.clone(),
            ports6: md.ports6.clone(),
            family: md.family.clone(),
        });
    }
    (out, skipped)
}

/// Read and join the files.
pub fn load(
    consensus: &str,
    microdescs: &[String],
) -> Result<(Vec<Exit>, Skipped), DirectoryError> {
    let read = |f: &str| {
        std::fs::read_to_string(f).map_err(|source| DirectoryError::Read {
            file: f.to_string(),
            source,
        })
    };
    let c = Consensus::parse(&read(consensus)?, consensus)?;
    let mut mds = Microdescs::default();
    for f in microdescs {
        mds.parse_into(&read(f)?, f)?;
    }
    let (exits, mut skipped) = exits(&c, &mds);
    skipped.absorb(&c.skipped);
    skipped.absorb(&mds.skipped);
    Ok((exits, skipped))
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
