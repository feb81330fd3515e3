//! Pure bookkeeping for the watcher: per-path debouncing, rename pairs, event-storm detection.
//! No I/O and no clock of its own (callers pass `now`), so it is tested with made-up instants.
//!
//! Everything is coalesced per path, so what is pending is bounded by the number of distinct
//! paths involved, not by the number of events: a path touched a million times is one entry, and
//! a chain of renames `a → b → c` is one rename `a → c` (`a → b → a` is none). The worker treats
//! more than [`Debouncer::MAX_PENDING`] entries like a queue overflow.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Paths with recent events, released once they have been quiet for `quiet` (or have waited
/// `max_wait`, so a file that is written to forever still gets indexed).
pub struct Debouncer {
    quiet: Duration,
    max_wait: Duration,
    /// path → (first event, last event)
    paths: HashMap<PathBuf, (Instant, Instant)>,
    /// Pending renames by arrival order (their number in `next`).
    renames: BTreeMap<u64, PendingRename>,
    /// Destination → the pending rename that leads there (a chain continues from it).
    by_to: HashMap<PathBuf, u64>,
    /// Path → the newest pending rename that involves it (as source or destination).
    involved: HashMap<PathBuf, u64>,
    next: u64,
}

struct PendingRename {
    from: PathBuf,
    to: PathBuf,
    first: Instant,
    last: Instant,
}

/// What is ready to be applied: renames first (they move documents), then paths to re-check.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    pub renames: Vec<(PathBuf, PathBuf)>,
    pub paths: Vec<PathBuf>,
}

impl Due {
    pub fn is_empty(&self) -> bool {
        self.renames.is_empty() && self.paths.is_empty()
    }
}

impl Debouncer {
    /// More pending entries than this and the worker drops them all and crawls instead.
    pub const MAX_PENDING: usize = 50_000;

    pub fn new(quiet: Duration) -> Debouncer {
        Debouncer {
            quiet,
            max_wait: quiet * 10,
            paths: HashMap::new(),
            renames: BTreeMap::new(),
            by_to: HashMap::new(),
            involved: HashMap::new(),
            next: 0,
        }
    }

    pub fn touch(&mut self, path: PathBuf, now: Instant) {
        self.paths.entry(path).and_modify(|e| e.1 = now).or_insert((now, now));
    }

    /// A rename `from → to`. It extends a pending rename that ended at `from` when no later
    /// pending rename involves `from` or `to` (so the order of moves is kept); a chain that
    /// comes back where it started cancels out (the path is re-checked instead).
    pub fn rename(&mut self, from: PathBuf, to: PathBuf, now: Instant) {
        if let Some(&n) = self.by_to.get(&from) {
            let later = |p: &PathBuf| self.involved.get(p).is_some_and(|m| *m > n);
            let extends = !later(&from) && !later(&to);
            if extends {
                self.by_to.remove(&from);
                self.forget(&from, n);
                let back_home = self.renames.get(&n).is_some_and(|r| r.from == to);
                if back_home {
                    self.renames.remove(&n);
                    self.forget(&to, n);
                    self.touch(to, now);
                    return;
                }
                if let Some(r) = self.renames.get_mut(&n) {
                    r.to = to.clone();
                    r.last = now;
                }
                self.by_to.insert(to.clone(), n);
                self.involved.insert(to, n);
                return;
            }
        }
        let n = self.next;
        self.next += 1;
        self.by_to.insert(to.clone(), n);
        self.involved.insert(from.clone(), n);
        self.involved.insert(to.clone(), n);
        self.renames.insert(n, PendingRename { from, to, first: now, last: now });
    }

    /// Drops `path → n` from `involved` if rename `n` is the newest to involve it.
    fn forget(&mut self, path: &PathBuf, n: u64) {
        if self.involved.get(path) == Some(&n) {
            self.involved.remove(path);
        }
    }

    pub fn len(&self) -> usize {
        self.paths.len() + self.renames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.paths.clear();
        self.renames.clear();
        self.by_to.clear();
        self.involved.clear();
    }

    fn due_at(&self, first: Instant, last: Instant) -> Instant {
        (last + self.quiet).min(first + self.max_wait)
    }

    /// When the next entry becomes due, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let paths = self.paths.values().map(|(first, last)| self.due_at(*first, *last));
        let renames = self.renames.values().map(|r| self.due_at(r.first, r.last));
        paths.chain(renames).min()
    }

    /// Removes and returns what is due at `now`. Renames are released in arrival order, as far
    /// as each is due (quiet for `quiet`, or waiting `max_wait`); a path involved in a pending
    /// rename waits for it, so the document is moved before it is re-checked.
    pub fn take_due(&mut self, now: Instant) -> Due {
        let mut due = Due::default();
        let (quiet, max_wait) = (self.quiet, self.max_wait);
        while let Some(entry) = self.renames.first_entry() {
            let r = entry.get();
            if (r.last + quiet).min(r.first + max_wait) > now {
                break;
            }
            let n = *entry.key();
            let r = entry.remove();
            if self.by_to.get(&r.to) == Some(&n) {
                self.by_to.remove(&r.to);
            }
            self.forget(&r.from, n);
            self.forget(&r.to, n);
            due.renames.push((r.from, r.to));
        }
        let ready: Vec<PathBuf> = self
            .paths
            .iter()
            .filter(|(p, (first, last))| self.due_at(*first, *last) <= now && !self.involved.contains_key(*p))
            .map(|(p, _)| p.clone())
            .collect();
        for p in &ready {
            self.paths.remove(p);
        }
        due.paths = ready;
        due.paths.sort();
        due
    }
}

/// Detects an event storm: more than `per_sec` events in each of `seconds` consecutive
/// one-second windows.
pub struct StormDetector {
    per_sec: u64,
    seconds: u32,
    window_start: Option<Instant>,
    window_count: u64,
    hot_windows: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storm {
    Calm,
    /// The threshold has just been exceeded for long enough.
    Started,
    /// Still storming.
    Ongoing,
    /// A calm window after a storm.
    Ended,
}

impl StormDetector {
    pub fn new(per_sec: u64, duration: Duration) -> StormDetector {
        StormDetector {
            per_sec,
            seconds: duration.as_secs().max(1) as u32,
            window_start: None,
            window_count: 0,
            hot_windows: 0,
        }
    }

    pub fn in_storm(&self) -> bool {
        self.hot_windows >= self.seconds
    }

    /// Declares a storm now (the event queue overflowed: events were lost). It ends like any
    /// other, with the first calm window. `Started` if there was none already.
    pub fn force(&mut self, now: Instant) -> Storm {
        let was = self.in_storm();
        self.hot_windows = self.seconds;
        self.window_start = Some(now);
        self.window_count = 0;
        if was {
            Storm::Ongoing
        } else {
            Storm::Started
        }
    }

    /// Records `n` events at `now` (n = 0 just advances the clock) and says where we stand.
    pub fn record(&mut self, n: u64, now: Instant) -> Storm {
        let was = self.in_storm();
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= Duration::from_secs(1) {
            // Close the current window, and count whole silent windows in between as calm.
            let hot = self.window_count > self.per_sec && elapsed < Duration::from_secs(2);
            self.hot_windows = if hot { self.hot_windows + 1 } else { 0 };
            self.window_start = Some(now);
            self.window_count = 0;
        }
        self.window_count += n;
        match (was, self.in_storm()) {
            (false, true) => Storm::Started,
            (true, true) => Storm::Ongoing,
            (true, false) => Storm::Ended,
            (false, false) => Storm::Calm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_due_after_it_has_been_quiet() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(ms(500));
        d.touch("/a".into(), t0);
        d.touch("/a".into(), t0 + ms(300));
        assert!(d.take_due(t0 + ms(600)).is_empty(), "the second event restarted the quiet period");
        assert_eq!(d.next_deadline(), Some(t0 + ms(800)));
        assert_eq!(d.take_due(t0 + ms(800)).paths, vec![PathBuf::from("/a")]);
        assert!(d.is_empty());
    }

    #[test]
    fn a_busy_path_is_released_after_max_wait() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(ms(100));
        for i in 0..30 {
            d.touch("/busy".into(), t0 + ms(50 * i));
            let due = d.take_due(t0 + ms(50 * i));
            if i * 50 >= 1000 {
                assert_eq!(due.paths.len(), 1, "released at {}ms", i * 50);
                return;
            }
            assert!(due.is_empty());
        }
        panic!("never released");
    }

    #[test]
    fn renames_come_before_the_paths_they_involve() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(ms(500));
        d.touch("/old".into(), t0);
        d.rename("/old".into(), "/new".into(), t0 + ms(100));
        d.touch("/new".into(), t0 + ms(100));
        d.touch("/other".into(), t0);
        let due = d.take_due(t0 + ms(550));
        assert_eq!(due.paths, vec![PathBuf::from("/other")], "/old waits for its rename");
        let due = d.take_due(t0 + ms(600));
        assert_eq!(due.renames, vec![(PathBuf::from("/old"), PathBuf::from("/new"))]);
        assert_eq!(due.paths, vec![PathBuf::from("/new"), PathBuf::from("/old")]);
    }

    #[test]
    fn rename_chains_coalesce_and_a_round_trip_cancels_out() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(ms(500));
        // A rename storm between two names: a million events would still be one entry.
        for i in 0..1000u64 {
            let (from, to) = if i % 2 == 0 { ("/a", "/b") } else { ("/b", "/a") };
            d.rename(from.into(), to.into(), t0 + ms(i));
            assert!(d.len() <= 2, "{} pending after {i} renames", d.len());
        }
        // 1000 renames: back at /a, nothing moved; /a is re-checked.
        let due = d.take_due(t0 + ms(2000));
        assert_eq!(due.renames, vec![]);
        assert_eq!(due.paths, vec![PathBuf::from("/a")]);

        d.rename("/x".into(), "/y".into(), t0);
        d.rename("/y".into(), "/z".into(), t0 + ms(10));
        assert_eq!(d.len(), 1);
        assert_eq!(d.take_due(t0 + ms(600)).renames, vec![(PathBuf::from("/x"), PathBuf::from("/z"))]);
        assert!(d.is_empty());
    }

    #[test]
    fn a_swap_through_a_temporary_name_keeps_its_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(ms(500));
        d.rename("/a".into(), "/tmp".into(), t0);
        d.rename("/b".into(), "/a".into(), t0);
        d.rename("/tmp".into(), "/b".into(), t0);
        let due = d.take_due(t0 + ms(600));
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(due.renames, vec![(p("/a"), p("/tmp")), (p("/b"), p("/a")), (p("/tmp"), p("/b"))]);
    }

    #[test]
    fn renames_are_released_in_order_and_a_busy_chain_after_max_wait() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(ms(100));
        d.rename("/1".into(), "/2".into(), t0);
        d.rename("/p".into(), "/q".into(), t0 + ms(50));
        // The first chain keeps moving; the second, behind it, waits for it.
        for i in 1..30u64 {
            let (from, to) = if i % 2 == 1 { ("/2", "/3") } else { ("/3", "/2") };
            d.rename(from.into(), to.into(), t0 + ms(50 * i));
            let due = d.take_due(t0 + ms(50 * i));
            if 50 * i >= 1000 {
                assert_eq!(due.renames.len(), 2, "released after max_wait at {}ms", 50 * i);
                assert_eq!(due.renames[1], (PathBuf::from("/p"), PathBuf::from("/q")));
                return;
            }
            assert!(due.renames.is_empty(), "at {}ms", 50 * i);
        }
        panic!("never released");
    }

    #[test]
    fn a_storm_needs_every_window_hot() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut st = StormDetector::new(1000, s(5));
        let mut states = vec![];
        for sec in 0..8u64 {
            for k in 0..10u64 {
                states.push(st.record(150, t0 + s(sec) + Duration::from_millis(k * 100)));
            }
        }
        assert!(states.contains(&Storm::Started));
        let started_at = states.iter().position(|x| *x == Storm::Started).unwrap();
        assert!(started_at >= 50, "five hot seconds first (at {started_at})");
        assert_eq!(st.record(1, t0 + s(8)), Storm::Ongoing, "the 8th second was hot too");
        assert_eq!(st.record(0, t0 + s(9) + Duration::from_millis(500)), Storm::Ended);

        let mut forced = StormDetector::new(1000, s(5));
        assert_eq!(forced.force(t0), Storm::Started);
        assert_eq!(forced.force(t0), Storm::Ongoing);
        assert_eq!(forced.record(5000, t0 + Duration::from_millis(500)), Storm::Ongoing);
        assert_eq!(forced.record(5000, t0 + s(1)), Storm::Ongoing, "a hot window keeps it");
        assert_eq!(forced.record(0, t0 + s(2)), Storm::Ongoing, "the window from 1 s was hot too");
        assert_eq!(forced.record(0, t0 + s(3)), Storm::Ended, "the first calm window ends it");

        let mut calm = StormDetector::new(1000, s(5));
        for sec in 0..10u64 {
            assert_eq!(calm.record(900, t0 + s(sec)), Storm::Calm);
        }
    }
}
