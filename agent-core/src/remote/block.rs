//! A large remote file read by ranges through its block-mode cache entry.

use std::fs::File;
use std::sync::{Arc, Mutex};

use super::{Pin, Remote, Target};
use crate::cache::block_map::BlockMap;
use crate::cache::store::{CacheError, Hit};
use crate::vfs::Content;

/// A random read fetches at least this much (aligned), so a 64 KiB read costs one small request.
pub const MIN_FETCH: u64 = 256 << 10;
/// Sequential reads double the fetch up to this.
pub const MAX_FETCH: u64 = 16 << 20;

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
    /// The cache refused to keep a range: reads are served from memory.
    no_room: bool,
}

pub(super) struct BlockFile {
    remote: Arc<Remote>,
    t: Target,
    _pin: Pin,
    state: Mutex<State>,
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

    /// Brings the state up to date with the cache (another handle may have fetched).
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
    /// it, aligned to [`MIN_FETCH`].
    fn plan(&self, offset: u64, end: u64) -> (u64, u64) {
        let size = self.t.src.size;
        let mut st = self.state();
        // Sequential: the miss starts where the last fetch ended (give or take a kernel read).
        let window = match st.last_fetch {
            Some((last_end, last_len)) if offset.abs_diff(last_end) <= MIN_FETCH => {
                (last_len * 2).min(MAX_FETCH)
            }
            _ => MIN_FETCH,
        };
        let start = offset - offset % MIN_FETCH;
        let want_end = end.max(start + window).next_multiple_of(MIN_FETCH).min(size);
        let (a, b) = if st.no_room {
            (start, want_end) // nothing is kept: fetch all of the read
        } else {
            let missing = st.map.missing(start, want_end);
            missing.into_iter().find(|&(a, b)| a < end && b > offset).unwrap_or((start, want_end))
        };
        st.last_fetch = Some((b, window));
        (a, b)
    }
}

fn to_io(e: crate::vfs::VfsError) -> std::io::Error {
    match e {
        crate::vfs::VfsError::Io(io) => io,
        other => std::io::Error::other(other.to_string()),
    }
}

impl Content for BlockFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let size = self.t.src.size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let end = (offset + buf.len() as u64).min(size);
        loop {
            if let Some(done) = self.try_serve(buf, offset, end) {
                return done;
            }
            let lock = self.remote.key_lock(&self.t.src.key);
            let _fetching = lock.lock().unwrap_or_else(|p| p.into_inner());
            self.refresh()?;
            if let Some(done) = self.try_serve(buf, offset, end) {
                return done;
            }
            if self.state().map.should_promote() {
                if let Ok(file) = self.remote.fetch_whole_locked(&self.t) {
                    let mut st = self.state();
                    st.file = Some(file);
                    st.full = true;
                    continue;
                }
            }
            let (a, b) = self.plan(offset, end);
            let (bytes, digest) =
                self.remote.rt.block_on(self.remote.fetcher.range(&self.t, a, b)).map_err(to_io)?;
            let kept = match self.remote.cache.write_range(&self.t.src, a, &bytes, &digest) {
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
                st.uncached = Some((a, Arc::new(bytes)));
            }
        }
    }

    fn file(&self) -> Option<&File> {
        None
    }
}
