//! `GET /metrics` of a steerer in a lab namespace, and its samples.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

use anyhow::{Context as _, Result};

use crate::netns::in_netns;

/// `GET /metrics` from `listen` inside namespace `ns`: (headers, body).
pub fn scrape(ns: &str, listen: &str) -> Result<(String, String)> {
    let listen = listen.to_string();
    let reply = in_netns(ns, move || -> std::io::Result<String> {
        let mut s = TcpStream::connect(&listen)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: gw\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })?
    .context("scraping the metrics")?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    Ok((head.to_string(), body.to_string()))
}

/// The value of the sample `sample` (its name with its labels, as written).
pub fn value(body: &str, sample: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.split_whitespace().next() == Some(sample))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
