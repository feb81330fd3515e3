//! How a block-mode reader fetches (ARCHITECTURE §10.3), as a pure value: given where the misses
//! fall, how much to fetch and what to read ahead. No I/O; tested alone.
//!
//! - A **random** miss fetches what was read, aligned to pages ([`PAGE`]): a database reading
//!   scattered 4 KiB pages fetches about what it reads.
//! - Misses that follow each other ([`STREAK`] in a row, each starting near where the previous
//!   fetch ended, within [`NEAR`] — the kernel may deliver a sequential reader's requests out of
//!   order) are **sequential**: the window starts at [`FIRST_WINDOW`] and doubles up to
//!   [`MAX_WINDOW`], and the reader is kept [`AHEAD`] windows ahead in the background.
//! - A seek ends the streak and the read-ahead.

/// Fetches are aligned to this (a page of most databases and of the kernel).
pub const PAGE: u64 = 4096;
/// A miss this close to where the last fetch ended counts as following it.
pub const NEAR: u64 = 512 << 10;
/// Misses in a row that make a reader sequential.
pub const STREAK: u32 = 2;
/// The first window of a sequential reader.
pub const FIRST_WINDOW: u64 = 256 << 10;
/// Sequential windows double up to this.
pub const MAX_WINDOW: u64 = 16 << 20;
/// How many windows a sequential reader is kept ahead of.
pub const AHEAD: u64 = 2;

/// What one miss should fetch: `[start, end)`, and whether the reader is sequential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub start: u64,
    pub end: u64,
    pub sequential: bool,
}

/// One open file's reading pattern.
#[derive(Clone, Debug, Default)]
pub struct Pattern {
    /// Where the last miss's fetch ended, and its window (0 while random).
    last: Option<(u64, u64)>,
    /// Misses in a row that followed the previous one.
    streak: u32,
    /// While sequential: where the read-ahead has got to, and its window.
    ahead: Option<(u64, u64)>,
    /// The cache keeps nothing: no read-ahead (its bytes would be lost).
    no_room: bool,
}

fn down(x: u64) -> u64 {
    x - x % PAGE
}

fn up(x: u64, size: u64) -> u64 {
    x.next_multiple_of(PAGE).min(size)
}

impl Pattern {
    pub fn new() -> Pattern {
        Pattern::default()
    }

    /// A miss at `[offset, end)` of a file of `size` bytes: what to fetch.
    pub fn miss(&mut self, offset: u64, end: u64, size: u64) -> Want {
        let follows = self.last.is_some_and(|(last_end, _)| offset.abs_diff(last_end) <= NEAR);
        self.streak = if follows { self.streak + 1 } else { 0 };
        let sequential = self.streak >= STREAK;
        let start = down(offset);
        let want = if sequential {
            let previous = self.last.map_or(0, |(_, w)| w);
            let window = if previous == 0 { FIRST_WINDOW } else { (previous * 2).min(MAX_WINDOW) };
            Want { start, end: up(end.max(start + window), size), sequential }
        } else {
            self.ahead = None; // a seek: no read-ahead until the reads follow each other again
            Want { start, end: up(end, size), sequential }
        };
        let window = if sequential { want.end - want.start } else { 0 };
        self.last = Some((want.end, window));
        want
    }

    /// The window of the last sequential fetch (for its read-ahead).
    pub fn window(&self) -> u64 {
        self.last.map_or(FIRST_WINDOW, |(_, w)| w.max(FIRST_WINDOW))
    }

    /// A sequential fetch ended at `from`: the read-ahead starts there with `window`.
    /// Returns what to fetch ahead, if anything.
    pub fn start_ahead(&mut self, from: u64, window: u64, size: u64) -> Option<(u64, u64)> {
        if self.no_room || from >= size {
            self.ahead = None;
            return None;
        }
        let until = (from + window).min(size);
        self.ahead = Some((until, window));
        Some((from, until))
    }

    /// A reader served from the cache got to `at`: the next window to fetch ahead, when the
    /// read-ahead is less than [`AHEAD`] windows in front of it.
    pub fn keep_ahead(&mut self, at: u64, size: u64) -> Option<(u64, u64)> {
        match self.ahead {
            Some((ahead_end, window)) if !self.no_room && at + AHEAD * window >= ahead_end => {
                self.start_ahead(ahead_end, (window * 2).min(MAX_WINDOW), size)
            }
            _ => None,
        }
    }

    /// The cache refused to keep a range: stop reading ahead.
    pub fn no_room(&mut self) {
        self.no_room = true;
        self.ahead = None;
    }

    pub fn has_room(&self) -> bool {
        !self.no_room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: u64 = 1 << 30;

    #[test]
    fn random_reads_fetch_what_they_read_page_aligned() {
        let mut p = Pattern::new();
        for offset in [70_000_000u64, 3_000_000, 500_000_000, 12_345] {
            let w = p.miss(offset, offset + 4096, SIZE);
            assert!(!w.sequential, "{offset}");
            assert!(w.start <= offset && w.end >= offset + 4096);
            assert!(w.end - w.start <= 4096 + 2 * PAGE, "at most the pages touched: {w:?}");
            assert_eq!(p.keep_ahead(offset + 4096, SIZE), None, "no read-ahead for random reads");
        }
    }

    #[test]
    fn a_sequential_reader_grows_its_window_to_the_cap_and_is_read_ahead() {
        let mut p = Pattern::new();
        let (mut at, mut windows) = (0u64, Vec::new());
        for _ in 0..12 {
            let w = p.miss(at, at + (128 << 10), SIZE);
            windows.push((w.sequential, w.end - w.start));
            at = w.end;
        }
        assert!(!windows[0].0 && !windows[1].0, "two misses before a streak: {windows:?}");
        assert!(windows[2].0);
        assert_eq!(windows[2].1, FIRST_WINDOW);
        assert!(windows.windows(2).skip(2).all(|w| w[1].1 == (w[0].1 * 2).min(MAX_WINDOW)), "{windows:?}");
        assert_eq!(windows.last().unwrap().1, MAX_WINDOW);
        let ahead = p.start_ahead(at, p.window(), SIZE).unwrap();
        assert_eq!(ahead, (at, at + MAX_WINDOW));
        assert!(p.keep_ahead(at, SIZE).is_some(), "kept two windows ahead");
    }

    #[test]
    fn out_of_order_kernel_requests_still_count_as_sequential_and_a_seek_resets() {
        let mut p = Pattern::new();
        p.miss(0, 131_072, SIZE);
        p.miss(262_144, 393_216, SIZE); // the kernel's next-but-one request came first
        assert!(p.miss(131_072, 262_144, SIZE).sequential);
        p.start_ahead(1 << 20, FIRST_WINDOW, SIZE);
        let seek = p.miss(900_000_000, 900_004_096, SIZE);
        assert!(!seek.sequential);
        assert_eq!(p.keep_ahead(900_004_096, SIZE), None, "the seek dropped the read-ahead");
    }

    #[test]
    fn windows_stop_at_the_end_of_the_file_and_no_room_stops_the_read_ahead() {
        let mut p = Pattern::new();
        let size = 300_000;
        for at in [0u64, 100_000, 200_000] {
            let w = p.miss(at, (at + 100_000).min(size), size);
            assert!(w.end <= size);
        }
        p.no_room();
        assert_eq!(p.start_ahead(0, FIRST_WINDOW, size), None);
        assert!(!p.has_room());
    }
}
