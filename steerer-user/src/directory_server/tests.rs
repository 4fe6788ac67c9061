//! The directory's HTTP answers, through the router itself (no socket:
//! `tower::ServiceExt::oneshot`).

use std::{io::Write as _, sync::Arc};

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::*;

const HOPS: &str = r#"
[[hop]]
name = "near"
interface = "wan0"
next_hop = "198.18.1.2"
estimated_speed_mbit = 100.0
estimated_capacity_mbit = 100.0
landmarks_ms = { ams = 10.0, fra = 15.0 }

[[hop]]
name = "far"
interface = "wan0"
next_hop = "198.18.1.3"
estimated_speed_mbit = 100.0
estimated_capacity_mbit = 100.0
landmarks_ms = { ams = 90.0, fra = 80.0 }

[[hop]]
name = "unknown"
interface = "wan0"
next_hop = "198.18.1.4"
estimated_speed_mbit = 100.0
estimated_capacity_mbit = 100.0
"#;

fn directory(text: &str) -> (tempfile_path::Guard, Arc<Directory>) {
    let g = tempfile_path::Guard::new(text);
    let dir = Arc::new(Directory::open(g.path.clone()).expect("directory"));
    (g, dir)
}

async fn call(dir: &Arc<Directory>, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let resp = router(dir.clone()).oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get(etag: Option<&str>) -> Request<Body> {
    let mut b = Request::get("/hops");
    if let Some(t) = etag {
        b = b.header(header::IF_NONE_MATCH, t);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_document_comes_with_an_etag_and_an_unchanged_one_is_not_sent_again() {
    let (g, dir) = directory(HOPS);
    let (status, headers, body) = call(&dir, get(None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, HOPS, "the file as it is");
    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    let (status, _, body) = call(&dir, get(Some(&etag))).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    // A new version: a new tag, sent whole to the old tag's holder.
    let changed = HOPS.replace("\"far\"", "\"farther\"");
    g.rewrite(&changed);
    let (status, headers, body) = call(&dir, get(Some(&etag))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, changed);
    assert_ne!(headers[header::ETAG].to_str().unwrap(), etag);
    // A version that does not parse: the last good one stays served.
    g.rewrite("[[hop]]\nname = 3\n");
    let (status, _, body) = call(&dir, get(None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, changed);
}

#[tokio::test]
async fn nearest_answers_the_hops_whose_landmark_times_are_most_alike() {
    let (_g, dir) = directory(HOPS);
    let req = Request::post("/nearest")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"landmarks_ms": {"ams": 85.0, "fra": 82.0}, "n": 2}"#,
        ))
        .unwrap();
    let (status, _, body) = call(&dir, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // What the daemon's directory reader makes of the answer.
    let hops = crate::config::directory::parse_directory(&body).expect("a hop document");
    let names: Vec<&str> = hops.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["far", "near"], "far is 4 ms off, near 71");
    // A malformed request is refused, not answered with everything.
    let bad = Request::post("/nearest")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"n": 2}"#))
        .unwrap();
    let (status, _, _) = call(&dir, bad).await;
    assert!(status.is_client_error(), "{status}");
}

/// A file of its own per test, removed at the end (also on failure).
mod tempfile_path {
    use super::*;

    pub struct Guard {
        pub path: std::path::PathBuf,
    }

    impl Guard {
        pub fn new(text: &str) -> Guard {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("steerer-directory-{}-{n}.toml", std::process::id()));
            let g = Guard { path };
            g.rewrite(text);
            g
        }

        /// Replace the file's text (a new length or time: a new version).
        pub fn rewrite(&self, text: &str) {
            let tmp = self.path.with_extension("new");
            let mut f = std::fs::File::create(&tmp).expect("create");
            f.write_all(text.as_bytes()).expect("write");
            std::fs::rename(&tmp, &self.path).expect("rename");
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
