//! `steerer directory serve`: the hop directory over HTTP for labs and
//! small deployments (issue 14, item 5). It serves a hop file, the same
//! `[[hop]]` document a daemon's `hop_directory` reads:
//!
//! * `GET /hops`: the whole document, with an `ETag` (a hash of its
//!   bytes); a request whose `If-None-Match` names the current one gets
//!   `304 Not Modified` and no body, so a poller pays for changes only;
//! * `POST /nearest` with `{"landmarks_ms": {"NAME": ms, ...}, "n": N}`:
//!   a document of the N hops whose landmark times are most like the
//!   client's (`nearest.rs`).
//!
//! The file is read again when its modification time or size changes; a
//! file that does not parse keeps the last good document served (and is
//! logged), as a daemon keeps its running pool.

pub mod nearest;
mod state;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::{Context as _, Result};
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use tracing::info;

pub use state::Directory;

/// What `POST /nearest` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearestRequest {
    pub landmarks_ms: std::collections::BTreeMap<String, f64>,
    pub n: usize,
}

/// The routes over a directory file.
pub fn router(dir: Arc<Directory>) -> Router {
    Router::new()
        .route("/hops", get(hops))
        .route("/nearest", post(nearest_hops))
        .with_state(dir)
}

async fn hops(State(dir): State<Arc<Directory>>, req: HeaderMap) -> Response {
    let doc = match dir.current() {
        Ok(d) => d,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}\n")).into_response(),
    };
    let etag = format!("\"{}\"", doc.etag);
    let unchanged = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag),
            (header::CONTENT_TYPE, "application/toml".to_string()),
        ],
        doc.text.clone(),
    )
        .into_response()
}

async fn nearest_hops(
    State(dir): State<Arc<Directory>>,
    Json(req): Json<NearestRequest>,
) -> Response {
    let doc = match dir.current() {
        Ok(d) => d,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}\n")).into_response(),
    };
    let picked = nearest::nearest(&doc.hops, &req.landmarks_ms, req.n);
    match state::document(&picked) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/toml")],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// A certificate chain and its key (PEM files) to serve HTTPS with.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Serve `hops` on `listen` until SIGINT/SIGTERM, over HTTPS with `tls`.
pub fn serve(hops: PathBuf, listen: SocketAddr, tls: Option<TlsFiles>) -> Result<()> {
    let dir = Arc::new(Directory::open(hops.clone())?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        match tls {
            None => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("listening on {listen}"))?;
                info!(%listen, hops = %hops.display(), "serving the hop directory over http: GET /hops, POST /nearest");
                axum::serve(listener, router(dir))
                    .with_graceful_shutdown(shutdown())
                    .await
                    .context("serving")
            }
            Some(files) => serve_tls(dir, listen, &hops, files).await,
        }
    })
}

async fn serve_tls(
    dir: Arc<Directory>,
    listen: SocketAddr,
    hops: &std::path::Path,
    files: TlsFiles,
) -> Result<()> {
    // One TLS provider for the process: ring (the client's too).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .with_context(|| {
            format!(
                "--tls-cert {} / --tls-key {}: need a PEM certificate chain and its PEM private key",
                files.cert.display(),
                files.key.display()
            )
        })?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown().await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    info!(%listen, hops = %hops.display(), cert = %files.cert.display(), "serving the hop directory over https: GET /hops, POST /nearest");
    axum_server::bind_rustls(listen, config)
        .handle(handle)
        .serve(router(dir).into_make_service())
        .await
        .with_context(|| format!("serving on {listen}"))
}

async fn shutdown() {
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
