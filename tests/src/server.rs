//! The lab's test server: counts what each connection sends and answers
//! with the count (the protocol of `traffic`).

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, Result};

use crate::netns;

/// A server listening on some ports in a namespace; stops when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Listen on `ports` (IPv4 and IPv6) inside namespace `ns`.
    pub fn start(ns: &str, ports: &[u16]) -> Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for &port in ports {
            for addr in [format!("0.0.0.0:{port}"), format!("[::]:{port}")] {
                let listener = netns::in_netns(ns, {
                    let addr = addr.clone();
                    move || bind_v6only(&addr)
                })??;
                listener.set_nonblocking(true)?;
                let stop = stop.clone();
                threads.push(std::thread::spawn(move || accept_loop(listener, stop)));
            }
        }
        Ok(Server { stop, threads })
    }
}

fn bind_v6only(addr: &str) -> Result<TcpListener> {
    let sa: SocketAddr = addr.parse()?;
    // std binds [::] dual-stack; the v4 listener already has the port, so
    // the v6 one must be v6-only (via the raw socket option).
    let listener = if sa.is_ipv6() {
        use std::os::fd::{AsRawFd, FromRawFd};
        let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let sock = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        for opt in [libc::IPV6_V6ONLY] {
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_IPV6,
                    opt,
                    &one as *const _ as *const libc::c_void,
                    4,
                );
            }
        }
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                &one as *const _ as *const libc::c_void,
                4,
            );
        }
        let std::net::SocketAddr::V6(v6) = sa else {
            unreachable!()
        };
        let raw = libc::sockaddr_in6 {
            sin6_family: libc::AF_INET6 as u16,
            sin6_port: v6.port().to_be(),
            sin6_flowinfo: 0,
            sin6_addr: libc::in6_addr {
                s6_addr: v6.ip().octets(),
            },
            sin6_scope_id: 0,
        };
        let rc = unsafe {
            libc::bind(
                fd,
                &raw as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in6>() as u32,
            )
        };
        if rc != 0 || unsafe { libc::listen(fd, 1024) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("bind/listen {addr}"));
        }
        let _ = sock.as_raw_fd();
        sock
    } else {
        TcpListener::bind(sa).with_context(|| format!("bind {addr}"))?
    };
    Ok(listener)
}

fn accept_loop(listener: TcpListener, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                std::thread::spawn(move || {
                    let _ = serve(stream);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut len = [0u8; 8];
    stream.read_exact(&mut len)?;
    let want = u64::from_be_bytes(len);
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while got < want {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    stream.write_all(&got.to_be_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    Ok(())
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
