//! Test traffic: a client that uploads a given number of bytes per
//! connection to the lab's `Server`, and the workloads built from it.
//!
//! Protocol (`server`): the client sends an 8-byte big-endian length N,
//! then N bytes; the server answers with the 8-byte count it received. A
//! connection succeeds when the count matches.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use rand::{rngs::StdRng, Rng, SeedableRng};

pub use crate::server::Server;
use crate::{netns, sizes::SizeCdf};

/// Outcome of one client connection.
#[derive(Debug, Clone)]
pub struct ConnResult {
    pub local: Option<SocketAddr>,
    pub remote: SocketAddr,
    /// Payload bytes the client asked to send.
    pub size: u64,
    /// The server confirmed the full count.
    pub ok: bool,
    pub error: Option<String>,
    pub elapsed: Duration,
    /// 0 for the first try of a request, 1.. for retries after a failure.
    pub attempt: u32,
    /// The request this attempt belongs to (numbered in issue order).
    pub request: u64,
    /// TCP payload bytes the client's kernel sent, retransmissions
    /// included (`tcpi_bytes_sent`), read once the server confirmed.
    pub bytes_sent: Option<u64>,
}

/// `tcpi_bytes_sent` of a connected socket.
fn tcp_bytes_sent(s: &TcpStream) -> Option<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain data; the kernel fills at most `len` bytes.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (rc == 0 && len as usize >= std::mem::size_of::<libc::tcp_info>())
        .then_some(info.tcpi_bytes_sent)
}

/// One upload of `size` bytes; must run on a thread inside the client
/// namespace (see [`netns::spawn_in`]).
pub fn upload(
    remote: SocketAddr,
    size: u64,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> ConnResult {
    let started = Instant::now();
    let mut local = None;
    let mut bytes_sent = None;
    let result = (|| -> std::io::Result<()> {
        let mut s = TcpStream::connect_timeout(&remote, connect_timeout)?;
        local = s.local_addr().ok();
        s.set_read_timeout(Some(io_timeout))?;
        s.set_write_timeout(Some(io_timeout))?;
        s.write_all(&size.to_be_bytes())?;
        let chunk = vec![0x5au8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            s.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        let mut count = [0u8; 8];
        s.read_exact(&mut count)?;
        if u64::from_be_bytes(count) != size {
            return Err(std::io::Error::other(format!(
                "server counted {} of {size} bytes",
                u64::from_be_bytes(count)
            )));
        }
        bytes_sent = tcp_bytes_sent(&s);
        Ok(())
    })();
    ConnResult {
        local,
        remote,
        size,
        ok: result.is_ok(),
        error: result.err().map(|e| e.to_string()),
        elapsed: started.elapsed(),
        attempt: 0,
        request: 0,
        bytes_sent,
    }
}

/// How sizes are chosen.
#[derive(Debug, Clone)]
pub enum Sizes {
    Fixed(u64),
    Cdf {
        cdf: SizeCdf,
        scale: f64,
        max: u64,
    },
    /// (size, probability) pairs; probabilities sum to 1.
    Mix(Vec<(u64, f64)>),
}

impl Sizes {
    /// One request's size.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        match self {
            Sizes::Fixed(s) => *s,
            Sizes::Cdf { cdf, scale, max } => {
                ((cdf.sample(rng) as f64 * scale) as u64).clamp(1, *max)
            }
            Sizes::Mix(mix) => {
                let mut u: f64 = rng.gen();
                for &(size, p) in mix {
                    if u < p {
                        return size;
                    }
                    u -= p;
                }
                mix.last().map_or(1, |m| m.0)
            }
        }
    }
}

/// A client workload: `workers` parallel loops, each opening connections
/// one after another until `connections` are done or `duration` passes
/// (closed loop); or, with `arrivals`, requests at seeded Poisson times
/// for `duration`, each on its own thread (open loop, see [`open_loop`]).
#[derive(Debug, Clone)]
pub struct Workload {
    pub targets: Vec<SocketAddr>,
    pub workers: usize,
    pub connections: Option<usize>,
    pub duration: Option<Duration>,
    pub sizes: Sizes,
    pub seed: u64,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// A failed request is retried on a new connection (new source port,
    /// hence a new flow) up to this many times, as applications do.
    pub retries: u32,
    /// Open loop: this many requests per second on average, arriving
    /// whatever the gateway does; `workers` is then unused.
    pub arrivals: Option<f64>,
}

impl Workload {
    pub fn fixed(targets: Vec<SocketAddr>, connections: usize, workers: usize, size: u64) -> Self {
        Workload {
            targets,
            workers,
            connections: Some(connections),
            duration: None,
            sizes: Sizes::Fixed(size),
            seed: 1,
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
            retries: 0,
            arrivals: None,
        }
    }
}

/// Shared live view of a running workload.
#[derive(Default)]
pub struct Progress {
    pub results: Mutex<Vec<ConnResult>>,
    pub stop: AtomicBool,
}

impl Progress {
    /// The results so far.
    pub fn collected(&self) -> Result<Vec<ConnResult>> {
        Ok(self
            .results
            .lock()
            .map_err(|_| anyhow::anyhow!("results poisoned"))?
            .clone())
    }
}

/// Run `w` from namespace `ns`; blocks until done. `progress` lets another
/// thread watch results or stop early.
pub fn run_workload(ns: &str, w: &Workload, progress: Arc<Progress>) -> Result<Vec<ConnResult>> {
    if let Some(rate) = w.arrivals {
        return crate::open_loop::run(ns, w, rate, progress);
    }
    let started = Instant::now();
    let issued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::new();
    for worker in 0..w.workers {
        let w = w.clone();
        let progress = progress.clone();
        let issued = issued.clone();
        handles.push(netns::spawn_in(ns, move || {
            let mut rng =
                StdRng::seed_from_u64(w.seed.wrapping_mul(1000).wrapping_add(worker as u64));
            loop {
                if progress.stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(d) = w.duration {
                    if started.elapsed() >= d {
                        break;
                    }
                }
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if w.connections.is_some_and(|c| n >= c) {
                    break;
                }
                let size = w.sizes.sample(&mut rng);
                let target = w.targets[rng.gen_range(0..w.targets.len())];
                request(target, size, n as u64, &w, &progress);
            }
        })?);
    }
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    progress.collected()
}

/// One request: attempts until one succeeds, `w.retries` retries at
/// most, each a new connection; every attempt goes into `progress`.
pub(crate) fn request(target: SocketAddr, size: u64, n: u64, w: &Workload, progress: &Progress) {
    for attempt in 0..=w.retries {
        if attempt > 0 && progress.stop.load(Ordering::Relaxed) {
            break;
        }
        let mut r = upload(target, size, w.connect_timeout, w.io_timeout);
        r.attempt = attempt;
        r.request = n;
        let ok = r.ok;
        if let Ok(mut all) = progress.results.lock() {
            all.push(r);
        }
        if ok {
            break;
        }
    }
}

/// Run `connections` uploads of `size` bytes to `target` from `ns` with
/// `workers` in parallel, each on its first socket (no application
/// retry), and fail with the first failure and `context` unless every one
/// completes. Returns the results.
pub fn run_all_must_complete(
    ns: &str,
    target: std::net::SocketAddr,
    connections: usize,
    workers: usize,
    size: u64,
    context: &dyn Fn() -> String,
) -> Vec<ConnResult> {
    let mut w = Workload::fixed(vec![target], connections, workers, size);
    w.connect_timeout = Duration::from_secs(5);
    w.retries = 0;
    let results = run_workload(ns, &w, Arc::new(Progress::default())).expect("workload");
    let failed: Vec<_> = results.iter().filter(|r| !r.ok).collect();
    assert!(
        failed.is_empty(),
        "{} of {} connections failed: {:?}\n{}",
        failed.len(),
        results.len(),
        failed.first(),
        context()
    );
    results
}

/// A trickled upload's thread: (local port, bytes the server counted).
pub type Trickle = std::thread::JoinHandle<anyhow::Result<std::io::Result<(u16, u64)>>>;

/// An upload of `size` bytes in pieces of `chunk` with `pause` between: a
/// connection that stays open across whatever a test does meanwhile. On
/// its own thread in namespace `ns`; yields (local port, bytes the server
/// counted).
pub fn trickle(
    ns: &str,
    target: std::net::SocketAddr,
    size: u64,
    chunk: usize,
    pause: Duration,
) -> anyhow::Result<Trickle> {
    crate::netns::spawn_in(ns, move || -> std::io::Result<(u16, u64)> {
        let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
        let port = s.local_addr()?.port();
        s.write_all(&size.to_be_bytes())?;
        let piece = vec![0x5au8; chunk];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk as u64) as usize;
            s.write_all(&piece[..n])?;
            left -= n as u64;
            std::thread::sleep(pause);
        }
        let mut count = [0u8; 8];
        s.read_exact(&mut count)?;
        Ok((port, u64::from_be_bytes(count)))
    })
}
