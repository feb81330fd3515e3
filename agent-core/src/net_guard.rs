//! What one peer can hold of a listener (ARCHITECTURE §7.1, §10.1), shared by the hub's
//! listener and every agent's transfer server:
//!
//! - **Connections per peer address** are bounded ([`Limits::connections_per_peer`]): one more
//!   is closed as soon as it is accepted, before its TLS handshake.
//! - **A peer that stops reading is dropped**: a write to the connection that makes no progress
//!   for [`Limits::stall`] fails, which ends the connection and drops the response being sent
//!   (a transfer's reader thread then stops at its next chunk).
//! - [`PeerSlots`] counts anything per peer address (the transfer server uses it for streams).
//! - **Small responses leave at once**: admitted connections have `TCP_NODELAY` (what
//!   `axum_server`'s default acceptor sets, and this one replaces). Without it a response whose
//!   last write is small (a range's `Digest` trailer after its body) waited for the peer's
//!   delayed ACK, ~40 ms per request: a database reading 4 KiB pages at random through another
//!   machine's mount took 40 ms a page.
//!
//! The guard sits under TLS: [`Guard`] is an `axum_server` acceptor, wrapped by the rustls one.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The bounds of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections from one peer address, at most.
    pub connections_per_peer: usize,
    /// How long a write may wait for the peer to read before the connection is dropped.
    pub stall: Duration,
}

/// The address a peer is counted under: IPv4-mapped IPv6 addresses as IPv4.
pub fn peer_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Counts per peer address, each bounded by `per_peer`. Guarded by its mutex (held only to
/// count, never across I/O).
pub struct PeerSlots {
    per_peer: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One slot held by a peer; given back on drop.
pub struct PeerSlot {
    slots: Arc<PeerSlots>,
    peer: IpAddr,
}

impl PeerSlots {
    pub fn new(per_peer: usize) -> Arc<PeerSlots> {
        Arc::new(PeerSlots { per_peer, held: Mutex::new(HashMap::new()) })
    }

    /// A slot for `ip`, or `None` when it holds `per_peer` already.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        let peer = peer_of(ip);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(peer).or_insert(0);
        if *n >= self.per_peer {
            return None;
        }
        *n += 1;
        Some(PeerSlot { slots: self.clone(), peer })
    }

    /// Slots held by `ip` now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).get(&peer_of(ip)).copied().unwrap_or(0)
    }

    /// Slots held by every peer together.
    pub fn total(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

/// The acceptor: admits a connection if its peer has a free slot, and watches its writes.
#[derive(Clone)]
pub struct Guard {
    limits: Limits,
    connections: Arc<PeerSlots>,
}

impl Guard {
    pub fn new(limits: Limits) -> Guard {
        Guard { limits, connections: PeerSlots::new(limits.connections_per_peer) }
    }

    /// Open connections now, all peers together.
    pub fn connections(&self) -> usize {
        self.connections.total()
    }

    /// The accepted stream, watched and with `TCP_NODELAY`; an error (the connection is closed)
    /// when its peer already holds as many connections as allowed.
    pub fn admit(&self, stream: TcpStream) -> io::Result<Watched<TcpStream>> {
        let ip = stream.peer_addr()?.ip();
        let Some(slot) = self.connections.try_take(ip) else {
            tracing::debug!(peer = %ip, limit = self.limits.connections_per_peer, "connection refused: too many from this address");
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "too many connections from this address",
            ));
        };
        stream.set_nodelay(true)?;
        Ok(Watched { inner: stream, stall: self.limits.stall, waiting: None, _slot: slot })
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for Guard {
    type Stream = Watched<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(self.admit(stream).map(|s| (s, service)))
    }
}

/// A connection whose writes must make progress within `stall`; holds its peer's slot.
pub struct Watched<S> {
    inner: S,
    stall: Duration,
    /// Started when a write could not proceed; cleared by any progress.
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
    _slot: PeerSlot,
}

impl<S> Watched<S> {
    /// `Pending` from the inner stream: arm the timer (once) and fail when it fires.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let stall = self.stall;
        let timer = self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer read nothing for {} s", stall.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(&mut self, ready: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.waiting = None;
        ready
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.stalled(cx),
            ready => self.progressed(ready),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.stalled(cx),
            ready => self.progressed(ready),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.stalled(cx),
            ready => self.progressed(ready),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn slots_are_bounded_per_peer_and_given_back() {
        let slots = PeerSlots::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let s1 = slots.try_take(a).unwrap();
        let _s2 = slots.try_take(mapped).expect("a second slot");
        assert!(slots.try_take(a).is_none(), "the IPv4-mapped form is the same peer");
        assert!(slots.try_take("10.0.0.2".parse().unwrap()).is_some(), "another peer");
        assert_eq!(slots.held_by(a), 2);
        drop(s1);
        assert_eq!(slots.held_by(a), 1);
        assert!(slots.try_take(a).is_some());
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_is_dropped_and_too_many_are_refused() {
        let guard = Guard::new(Limits { connections_per_peer: 2, stall: Duration::from_millis(300) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = {
            let guard = guard.clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                for _ in 0..3 {
                    let (stream, _) = listener.accept().await.unwrap();
                    results.push(guard.admit(stream));
                }
                results
            })
        };
        let clients = [
            tokio::net::TcpStream::connect(addr).await.unwrap(),
            tokio::net::TcpStream::connect(addr).await.unwrap(),
            tokio::net::TcpStream::connect(addr).await.unwrap(),
        ];
        let mut admitted = server.await.unwrap();
        assert!(admitted.pop().unwrap().is_err(), "a third connection from the same address");
        assert_eq!(guard.connections(), 2);
        for a in &admitted {
            assert!(a.as_ref().unwrap().inner.nodelay().unwrap(), "admitted connections have TCP_NODELAY");
        }

        // The client reads nothing: the server's writes fill the buffers, then fail.
        let mut watched = admitted.pop().unwrap().unwrap();
        let chunk = vec![7u8; 1 << 20];
        let started = tokio::time::Instant::now();
        let err = loop {
            match tokio::time::timeout(Duration::from_secs(30), watched.write_all(&chunk)).await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => break e,
                Err(_) => panic!("a write was still pending after 30 s"),
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        drop(watched);
        assert_eq!(guard.connections(), 1, "the dropped connection gave its slot back");

        // A connection whose peer reads is never dropped, however long the write takes in all.
        let mut reading = admitted.pop().unwrap().unwrap();
        let [mut c0, _, _] = clients;
        let reader = tokio::spawn(async move {
            let mut total = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                match c0.read(&mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        for _ in 0..32 {
            reading.write_all(&chunk).await.expect("a reading peer keeps its connection");
        }
        drop(reading);
        assert_eq!(reader.await.unwrap(), 32 << 20);
    }
}
