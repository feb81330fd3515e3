//! A large remote file read by ranges through its block-mode cache entry.
//!
//! A read that is present is a `pread` of the cache file. A miss first waits for a fetch in
//! flight that covers it (another reader's, or a read-ahead); otherwise it fetches what the
//! reading pattern asks for ([`Pattern`]: the read itself for random access, a growing window
//! for a sequential reader, which is also read ahead in the background), verified, records it,
//! and reads it. A handle whose file changed while it was open serves nothing more.
//!
//! Lock order: `state` is never held while waiting for the network or another lock.

use std::fs::File;
use std::sync::{Arc, Mutex};

use super::error::RemoteError;
use super::policy::Pattern;
use super::{Handle, Pin, Remote, Target};
use crate::cache::block_map::BlockMap;
use crate::cache::store::{CacheError, Hit};
use crate::content::Content;
use crate::transfer::client::Verified;

/// Guarded by `BlockFile::state`.
struct State {
    /// The cache file (sparse while in block mode), once there is one.
    file: Option<File>,
    /// The whole file is in `file`.
    full: bool,
    map: BlockMap,
    pattern: Pattern,
    /// The last range served uncached (the cache had no room), kept for the reads that follow.
    uncached: Option<(u64, Arc<Vec<u8>>)>,
}

pub(super) struct BlockFile {
    remote: Arc<Remote>,
    t: Target,
    handle: Arc<Handle>,
    _pin: Pin,
    state: Mutex<State>,
}

impl BlockFile {
    pub fn new(
        remote: Arc<Remote>,
        t: Target,
        handle: Arc<Handle>,
        pin: Pin,
        cached: Option<(File, BlockMap)>,
    ) -> BlockFile {
        let (file, map) = match cached {
            Some((f, m)) => (Some(f), m),
            None => (None, BlockMap::new()),
        };
        BlockFile {
            remote,
            t,
            handle,
            _pin: pin,
            state: Mutex::new(State { file, full: false, map, pattern: Pattern::new(), uncached: None }),
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
    fn refresh(&self) -> Result<(), RemoteError> {
        let hit = self.remote.lookup(&self.t)?;
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

    /// What to fetch for a miss at `[offset, end)`: the first missing part of what the pattern
    /// wants, cut short before any fetch in flight. Also says whether the reader is sequential.
    fn plan(&self, offset: u64, end: u64) -> (u64, u64, bool) {
        let mut st = self.state();
        let want = st.pattern.miss(offset, end, self.t.src.size);
        let (a, b) = if !st.pattern.has_room() {
            (want.start, want.end) // nothing is kept: fetch all of it
        } else {
            let missing = st.map.missing(want.start, want.end);
            missing.into_iter().find(|&(a, b)| a < end && b > offset).unwrap_or((want.start, want.end))
        };
        drop(st);
        let b = self.remote.flights.clip(&self.t.src.key, a, b).max(end.min(b));
        (a, b, want.sequential)
    }

    /// Records a verified range; when the cache does not keep it, it is served from memory.
    fn record(&self, a: u64, b: u64, range: Verified) -> Result<(), RemoteError> {
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
            st.pattern.no_room();
            st.uncached = Some((a, Arc::new(range.into_bytes())));
        }
        Ok(())
    }

    /// Fetches `[from, until)` in the background (what of it is missing and not already being
    /// fetched).
    fn read_ahead(&self, from: u64, until: u64) {
        let missing = self.state().map.missing(from, until).into_iter().next();
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

    fn read(&self, buf: &mut [u8], offset: u64) -> Result<usize, RemoteError> {
        let size = self.t.src.size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let end = (offset + buf.len() as u64).min(size);
        let key = &self.t.src.key;
        loop {
            self.handle.check(&self.t.file_id)?;
            if let Some(done) = self.try_serve(buf, offset, end) {
                let ahead = self.state().pattern.keep_ahead(end, size);
                if let Some((from, until)) = ahead {
                    self.read_ahead(from, until);
                }
                return Ok(done?);
            }
            if let Some(flight) = self.remote.flights.overlapping(key, offset, end) {
                flight.wait();
                self.refresh()?;
                continue;
            }
            self.refresh()?;
            if let Some(done) = self.try_serve(buf, offset, end) {
                return Ok(done?);
            }
            if self.state().map.should_promote() {
                if let Ok(Some(file)) = self.remote.fetch_whole(&self.t) {
                    let mut st = self.state();
                    st.file = Some(file);
                    st.full = true;
                    continue;
                }
            }
            let (a, b, sequential) = self.plan(offset, end);
            let Some(boarding) = self.remote.flights.board(key, a, b) else { continue };
            let began = std::time::Instant::now();
            let fetched = self.remote.rt.block_on(self.remote.fetcher.range(&self.t, a, b));
            let range = match fetched {
                Ok(r) => r,
                Err(e) => {
                    if matches!(e, RemoteError::Changed { .. }) {
                        // This handle's version is gone at the source: it serves nothing more.
                        self.handle.superseded.store(true, std::sync::atomic::Ordering::Release);
                    }
                    return Err(e);
                }
            };
            let fetched_in = began.elapsed();
            self.record(a, b, range)?;
            drop(boarding);
            tracing::debug!(
                operation = "remote.range",
                file_id = %self.t.file_id,
                start = a,
                bytes = b - a,
                sequential,
                fetch_us = fetched_in.as_micros() as u64,
                record_us = (began.elapsed() - fetched_in).as_micros() as u64,
                "range fetched"
            );
            if sequential {
                let ahead = {
                    let mut st = self.state();
                    let window = st.pattern.window();
                    st.pattern.start_ahead(b, window, size)
                };
                if let Some((from, until)) = ahead {
                    self.read_ahead(from, until);
                }
            }
        }
    }
}

impl Content for BlockFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.read(buf, offset).map_err(RemoteError::into_io)
    }

    fn file(&self) -> Option<&File> {
        None
    }
}
