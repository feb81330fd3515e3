//! A large remote file read by ranges through its block-mode cache entry.
//!
//! A read that is present is a `pread` of the cache file. A miss first waits for a fetch in
//! flight that covers it (another reader's, or a read-ahead); otherwise it fetches the first
//! missing part of a window around the read, verified, records it, and reads it. While the
//! misses follow each other the window doubles (256 KiB → 16 MiB) and the next window is fetched
//! ahead in the background, so the network works while the reader copies.

use std::fs::File;
use std::sync::{Arc, Mutex};

use super::{Pin, Remote, Target};
use crate::cache::block_map::BlockMap;
use crate::cache::store::{CacheError, Hit};
use crate::transfer::client::Verified;
use crate::vfs::Content;

/// A random read fetches at least this much (aligned), so a 64 KiB read costs one small request.
pub const MIN_FETCH: u64 = 256 << 10;
/// Sequential reads double the fetch up to this.
pub const MAX_FETCH: u64 = 16 << 20;
/// How many windows a sequential reader is kept ahead of (fetches in flight at once).
const AHEAD: u64 = 2;

struct State {
    /// The cache file (sparse while in block mode), once there is one.
    file: Option<File>,
    /// The whole file is in `file`.
    full: bool,
    map: BlockMap,
    /// Where the last fetch ended, and its size (sequential reads grow it).
    last_fetch: Option<(u64, u64)>,
    /// The last range served uncached (the cache had no room), kept for the reads that follow.
    uncached: Option<(u64, Arc<Vec<u8>>)>,
    /// The cache refused to keep a range: reads are served from memory, nothing read ahead.
    no_room: bool,
    /// While reads are sequential: where the read-ahead has got to, and its window.
    ahead: Option<(u64, u64)>,
}

pub(super) struct BlockFile {
    remote: Arc<Remote>,
    t: Target,
    _pin: Pin,
    state: Mutex<State>,
}

fn to_io(e: crate::vfs::VfsError) -> std::io::Error {
    match e {
        crate::vfs::VfsError::Io(io) => io,
        other => std::io::Error::other(other.to_string()),
    }
}

impl BlockFile {
    pub fn new(remote: Arc<Remote>, t: Target, pin: Pin, cached: Option<(File, BlockMap)>) -> BlockFile {
        let (file, map) = match cached {
            Some((f, m)) => (Some(f), m),
            None => (None, BlockMap::new()),
        };
        BlockFile {
            remote,
            t,
            _pin: pin,
            state: Mutex::new(State {
                file,
                full: false,
                map,
                last_fetch: None,
                uncached: None,
                no_room: false,
                ahead: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copies `[offset, end)` if it is present (in the cache file or the uncached buffer).
    fn try_serve(&self, buf: &mut [u8], offset: u64, end: u64) -> Option<std::io::Result<usize>> {
        let st = self.state();
        let n = (end - offset) as usize;
        if let Some((at, bytes)) = &st.uncached {
            if *at <= offset && end <= at + bytes.len() as u64 {
                let from = (offset - at) as usize;
                buf[..n].copy_from_slice(&bytes[from..from + n]);
                return Some(Ok(n));
            }
        }
        if st.full || st.map.contains(offset, end) {
            let file = st.file.as_ref()?;
            return Some(Content::read_at(file, &mut buf[..n], offset));
        }
        None
    }

    /// Brings the state up to date with the cache (another reader or a read-ahead may have
    /// added ranges).
    fn refresh(&self) -> std::io::Result<()> {
        let hit = self.remote.lookup(&self.t).map_err(to_io)?;
        let mut st = self.state();
        match hit {
            Some(Hit::Full(f)) => {
                st.file = Some(f);
                st.full = true;
            }
            Some(Hit::Block(f, map)) => {
                st.file = Some(f);
                st.map = map;
            }
            None => {
                st.map = BlockMap::new();
                st.full = false;
            }
        }
        Ok(())
    }

    /// What to fetch for a miss at `[offset, end)`: the first missing part of the window around
    /// it, aligned to [`MIN_FETCH`], cut short before any fetch in flight. Also returns whether
    /// the reads are sequential (then the next window is worth fetching ahead).
    fn plan(&self, offset: u64, end: u64) -> (u64, u64, bool) {
        let size = self.t.src.size;
        let mut st = self.state();
        // Sequential: the miss starts where the last fetch ended (give or take a kernel read).
        let (window, sequential) = match st.last_fetch {
            Some((last_end, last_len)) if offset.abs_diff(last_end) <= MIN_FETCH => {
                ((last_len * 2).min(MAX_FETCH), true)
            }
            _ => (MIN_FETCH, false),
        };
        let start = offset - offset % MIN_FETCH;
        let want_end = end.max(start + window).next_multiple_of(MIN_FETCH).min(size);
        let (a, b) = if st.no_room {
            (start, want_end) // nothing is kept: fetch all of the read
        } else {
            let missing = st.map.missing(start, want_end);
            missing.into_iter().find(|&(a, b)| a < end && b > offset).unwrap_or((start, want_end))
        };
        let b = self.remote.flights.clip(&self.t.src.key, a, b).max(end.min(b));
        st.last_fetch = Some((b, window));
        if !sequential {
            st.ahead = None; // a seek: no read-ahead until the reads follow each other again
        }
        (a, b, sequential)
    }

    /// Records a verified range; `false` if the cache did not keep it (then it is served from
    /// memory).
    fn record(&self, a: u64, b: u64, range: Verified) -> std::io::Result<()> {
        let kept = match self.remote.cache.write_verified_range(&self.t.src, a, &range) {
            Ok(_) => {
                self.refresh()?;
                let st = self.state();
                st.full || st.map.contains(a, b)
            }
            Err(e) => {
                if !matches!(e, CacheError::NoRoom { .. }) {
                    tracing::warn!(operation = "cache.write", file_id = %self.t.file_id, error = %e, "range not cached; served from memory");
                }
                false
            }
        };
        if !kept {
            let mut st = self.state();
            st.no_room = true;
            st.uncached = Some((a, Arc::new(range.into_bytes())));
        }
        Ok(())
    }

    /// Keeps one window fetched ahead of a sequential reader that got to `at`.
    fn keep_ahead(&self, at: u64) {
        let next = {
            let st = self.state();
            match st.ahead {
                Some((ahead_end, window)) if !st.no_room && at + AHEAD * window >= ahead_end => {
                    Some((ahead_end, (window * 2).min(MAX_FETCH)))
                }
                _ => None,
            }
        };
        if let Some((from, window)) = next {
            self.read_ahead(from, window);
        }
    }

    /// Fetches `[from, from + window)` in the background (what of it is missing and not already
    /// being fetched), and moves the read-ahead mark to its end.
    fn read_ahead(&self, from: u64, window: u64) {
        let size = self.t.src.size;
        let until = (from + window).min(size);
        let missing = {
            let mut st = self.state();
            if st.no_room || from >= size {
                st.ahead = None;
                return;
            }
            st.ahead = Some((until, window));
            st.map.missing(from, until).into_iter().next()
        };
        let Some((a, b)) = missing else { return };
        let b = self.remote.flights.clip(&self.t.src.key, a, b);
        let Some(boarding) = self.remote.flights.board(&self.t.src.key, a, b) else { return };
        let (remote, t) = (self.remote.clone(), self.t.clone());
        self.remote.rt.spawn(async move {
            let fetched = remote.fetcher.range(&t, a, b).await;
            let Ok(range) = fetched else { return drop(boarding) };
            let cache = remote.cache.clone();
            let written = tokio::task::spawn_blocking(move || {
                let r = cache.write_verified_range(&t.src, a, &range);
                drop(boarding); // after the bytes are recorded (or refused)
                r
            })
            .await;
            if let Ok(Err(e)) = written {
                tracing::debug!(operation = "remote.read_ahead", error = %e, "read-ahead not kept");
            }
        });
    }
}

impl Content for BlockFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let size = self.t.src.size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let end = (offset + buf.len() as u64).min(size);
        let key = &self.t.src.key;
        loop {
            if let Some(done) = self.try_serve(buf, offset, end) {
                self.keep_ahead(end);
                return done;
            }
            if let Some(flight) = self.remote.flights.overlapping(key, offset, end) {
                flight.wait();
                self.refresh()?;
                continue;
            }
            self.refresh()?;
            if let Some(done) = self.try_serve(buf, offset, end) {
                return done;
            }
            if self.state().map.should_promote() {
                if let Ok(file) = self.remote.fetch_whole(&self.t) {
                    let mut st = self.state();
                    st.file = Some(file);
                    st.full = true;
                    continue;
                }
            }
            let (a, b, sequential) = self.plan(offset, end);
            let Some(boarding) = self.remote.flights.board(key, a, b) else { continue };
            let began = std::time::Instant::now();
            let range = self.remote.rt.block_on(self.remote.fetcher.range(&self.t, a, b)).map_err(to_io)?;
            let fetched = began.elapsed();
            self.record(a, b, range)?;
            drop(boarding);
            tracing::debug!(
                operation = "remote.range",
                file_id = %self.t.file_id,
                start = a,
                bytes = b - a,
                fetch_us = fetched.as_micros() as u64,
                record_us = (began.elapsed() - fetched).as_micros() as u64,
                "range fetched"
            );
            if sequential {
                let window = self.state().last_fetch.map_or(MIN_FETCH, |(_, w)| w);
                self.read_ahead(b, window);
            }
        }
    }

    fn file(&self) -> Option<&File> {
        None
    }
}
