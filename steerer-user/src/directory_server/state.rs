//! The served document: read from the hop file, re-read when it changes,
//! the last good one kept when a new version does not parse.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::config::{directory::stamp, HopConfig};

/// One version of the document.
#[derive(Debug)]
pub struct Document {
    pub text: String,
    pub hops: Vec<HopConfig>,
    /// Base64 of the SHA-256 of `text`.
    pub etag: String,
}

type Stamp = Option<(SystemTime, u64)>;

pub struct Directory {
    path: PathBuf,
    current: Mutex<(Stamp, Arc<Document>)>,
}

impl Directory {
    /// The directory of `path`; its first version must parse.
    pub fn open(path: PathBuf) -> Result<Directory> {
        let now = stamp(&path);
        let doc = read(&path)?;
        info!(hops = doc.hops.len(), etag = %doc.etag, "hop directory read");
        Ok(Directory {
            path,
            current: Mutex::new((now, Arc::new(doc))),
        })
    }

    /// The document now (read again if the file changed).
    pub fn current(&self) -> Result<Arc<Document>> {
        let mut cur = self
            .current
            .lock()
            .map_err(|_| anyhow::anyhow!("directory state poisoned"))?;
        let now = stamp(&self.path);
        if now != cur.0 {
            cur.0 = now;
            match read(&self.path) {
                Ok(doc) => {
                    info!(hops = doc.hops.len(), etag = %doc.etag, "hop directory changed: serving the new version");
                    cur.1 = Arc::new(doc);
                }
                Err(e) => warn!(
                    error = %format!("{e:#}"),
                    "hop directory changed but does not parse: the last good version is served"
                ),
            }
        }
        Ok(cur.1.clone())
    }
}

fn read(path: &std::path::Path) -> Result<Document> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let hops = crate::config::directory::parse_directory(&text)
        .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
    let etag =
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(text.as_bytes()));
    Ok(Document { text, hops, etag })
}

/// A `[[hop]]` document of `hops`.
pub fn document(hops: &[&HopConfig]) -> Result<String, toml::ser::Error> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        hop: &'a [&'a HopConfig],
    }
    toml::to_string(&Doc { hop: hops })
}
