//! `hop_directory_url`: the hop directory from an HTTP or HTTPS server
//! (such as `steerer directory serve`), polled every `hop_directory_poll_secs`
//! with the ETag of the last answer, so an unchanged directory costs a
//! `304` and no body. A new version is parsed first (one that does not
//! parse is logged and not written), then written to `hop_directory`
//! aside and renamed over it: the daemon's per-tick check of that file
//! applies it as a reload, and a restart starts from the last version
//! fetched. A failed poll is logged and tried again at the next one.
//! `https://` is verified against `hop_directory_ca` (a PEM file of the
//! certificates to trust) or, without it, Mozilla's root certificates
//! (webpki-roots); rustls with ring does the TLS.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use http_body_util::{BodyExt as _, Empty};
use hyper::{body::Bytes, header, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use rustls::{
    pki_types::pem::PemObject as _, pki_types::CertificateDer, ClientConfig, RootCertStore,
};
use tracing::{debug, info, warn};

/// Largest directory document taken (bytes).
const MAX_DOCUMENT: usize = 256 << 20;

/// What one poll found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    Unchanged,
    /// A new version, written; its hop count.
    Written(usize),
}

pub struct DirectoryFetcher {
    url: Uri,
    path: PathBuf,
    etag: Option<String>,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl DirectoryFetcher {
    /// `ca`: the certificates an `https://` server must chain to (None:
    /// the web's roots). Errors name the setting to fix.
    pub fn new(url: &str, path: PathBuf, ca: Option<&Path>) -> Result<DirectoryFetcher> {
        let url: Uri = url
            .parse()
            .with_context(|| format!("hop_directory_url {url:?}"))?;
        let tls = client_tls(ca)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(DirectoryFetcher {
            url,
            path,
            etag: None,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// One poll.
    pub async fn poll(&mut self) -> Result<Fetched> {
        let mut req = hyper::Request::get(self.url.clone());
        if let Some(tag) = &self.etag {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let req = req.body(Empty::new()).context("building the request")?;
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .context("no answer within 30 s")?
            .context("request failed")?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::Unchanged);
        }
        if status != StatusCode::OK {
            bail!("answered {status}");
        }
        let etag = resp
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = http_body_util::Limited::new(resp.into_body(), MAX_DOCUMENT)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
            .to_bytes();
        let text = std::str::from_utf8(&body).context("the document is not UTF-8")?;
        let hops = crate::config::directory::parse_directory(text)
            .map_err(|e| anyhow::anyhow!("the document does not parse: {e}"))?;
        let tmp = self.path.with_extension("fetched");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("renaming {} over {}", tmp.display(), self.path.display()))?;
        self.etag = etag;
        Ok(Fetched::Written(hops.len()))
    }

    /// Poll every `every` until dropped (spawned by the daemon).
    pub async fn run(mut self, every: Duration) {
        loop {
            match self.poll().await {
                Ok(Fetched::Unchanged) => debug!(url = %self.url, "hop directory unchanged"),
                Ok(Fetched::Written(hops)) => info!(
                    url = %self.url, hops, file = %self.path.display(),
                    "hop directory fetched: a new version, applied at the next tick"
                ),
                Err(e) => warn!(
                    url = %self.url, error = %format!("{e:#}"),
                    "fetching the hop directory failed; the last version stays, tried again at the next poll"
                ),
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// The TLS client: ring, and the roots of `ca` or the web's.
pub fn client_tls(ca: Option<&Path>) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("hop_directory_ca: cannot read {}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("hop_directory_ca: {} is not PEM", path.display()))?;
            if certs.is_empty() {
                bail!("hop_directory_ca: no certificate in {}", path.display());
            }
            for c in certs {
                roots.add(c).with_context(|| {
                    format!(
                        "hop_directory_ca: a certificate of {} is not usable",
                        path.display()
                    )
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::client_tls;

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_an_error_naming_the_key() {
        let missing = std::path::Path::new("/nonexistent-steerer/ca.pem");
        let err = format!("{:#}", client_tls(Some(missing)).unwrap_err());
        assert!(
            err.starts_with("hop_directory_ca: cannot read /nonexistent-steerer/ca.pem"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("steerer-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = format!("{:#}", client_tls(Some(&empty)).unwrap_err());
        assert!(err.contains("no certificate in"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        // Without a file: the web's roots.
        assert!(client_tls(None).is_ok());
    }
}
