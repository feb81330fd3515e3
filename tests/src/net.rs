//! A TCP proxy the tests can cut: each agent reaches the hub through its own proxy on its own
//! loopback address (127.0.0.2, 127.0.0.3, ...), so a partition is a real connection failure
//! for that agent alone, and the hub can restart on another port behind it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A free TCP port on `ip` (bound and released; good enough for tests).
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0)).expect("bind").local_addr().expect("addr").port()
}

pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Milliseconds each forwarded chunk waits (0: none): a slow link, so a burst of pushes is
    /// still in flight when a test acts.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    upstream: Arc<Mutex<SocketAddr>>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on `ip` (a free port) and forwards to `upstream`.
    pub fn start(ip: &str, upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind((ip, 0)).expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let proxy = Proxy {
            addr,
            up: Arc::new(AtomicBool::new(true)),
            delay_ms: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            upstream: Arc::new(Mutex::new(upstream)),
            open: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (up, upstream, open, stop, delay) = (
            proxy.up.clone(),
            proxy.upstream.clone(),
            proxy.open.clone(),
            proxy.stop.clone(),
            proxy.delay_ms.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = conn else { continue };
                if !up.load(Ordering::Relaxed) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let target = *upstream.lock().unwrap();
                let Ok(server) = TcpStream::connect(target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                {
                    let mut o = open.lock().unwrap();
                    o.push(client.try_clone().expect("clone"));
                    o.push(server.try_clone().expect("clone"));
                }
                pipe(client.try_clone().expect("clone"), server.try_clone().expect("clone"), delay.clone());
                pipe(server, client, delay.clone());
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Cuts every open connection and refuses new ones until [`Proxy::heal`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::Relaxed);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Delays every forwarded chunk by `per_chunk` (zero: full speed again).
    pub fn throttle(&self, per_chunk: std::time::Duration) {
        self.delay_ms.store(per_chunk.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn heal(&self) {
        self.up.store(true, Ordering::Relaxed);
    }

    /// Points new connections at another upstream (a restarted hub).
    pub fn retarget(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
        let _ = TcpStream::connect(self.addr); // wakes the accept loop so it sees `stop`
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, delay_ms: Arc<std::sync::atomic::AtomicU64>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let delay = delay_ms.load(Ordering::Relaxed);
                    if delay > 0 {
                        std::thread::sleep(std::time::Duration::from_millis(delay));
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
