//! Pure bookkeeping for the watcher: per-path debouncing, rename pairs, event-storm detection.
//! No I/O and no clock of its own (callers pass `now`), so it is tested with made-up instants.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Paths with recent events, released once they have been quiet for `quiet` (or have waited
/// `max_wait`, so a file that is written to forever still gets indexed).
pub struct Debouncer {
    quiet: Duration,
    max_wait: Duration,
    /// path → (first event, last event)
    paths: HashMap<PathBuf, (Instant, Instant)>,
    /// Rename pairs in arrival order, with their arrival time.
    renames: Vec<(PathBuf, PathBuf, Instant)>,
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
    pub fn new(quiet: Duration) -> Debouncer {
        Debouncer { quiet, max_wait: quiet * 10, paths: HashMap::new(), renames: Vec::new() }
    }

    pub fn touch(&mut self, path: PathBuf, now: Instant) {
        self.paths.entry(path).and_modify(|e| e.1 = now).or_insert((now, now));
    }

    pub fn rename(&mut self, from: PathBuf, to: PathBuf, now: Instant) {
        self.renames.push((from, to, now));
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
    }

    /// When the next entry becomes due, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let paths = self.paths.values().map(|(first, last)| (*last + self.quiet).min(*first + self.max_wait));
        let renames = self.renames.iter().map(|r| r.2 + self.quiet);
        paths.chain(renames).min()
    }

    /// Removes and returns what is due at `now`. A rename is due when quiet for `quiet`; a path
    /// involved in a pending rename waits for it, so the document is moved before it is re-checked.
    pub fn take_due(&mut self, now: Instant) -> Due {
        let mut due = Due::default();
        let quiet = self.quiet;
        let (ready, waiting): (Vec<_>, Vec<_>) = self.renames.drain(..).partition(|r| r.2 + quiet <= now);
        self.renames = waiting;
        due.renames = ready.into_iter().map(|(f, t, _)| (f, t)).collect();
        let blocked: Vec<&PathBuf> = self.renames.iter().flat_map(|r| [&r.0, &r.1]).collect();
        let max_wait = self.max_wait;
        let ready: Vec<PathBuf> = self
            .paths
            .iter()
            .filter(|(p, (first, last))| {
                (*last + quiet <= now || *first + max_wait <= now) && !blocked.contains(p)
            })
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

        let mut calm = StormDetector::new(1000, s(5));
        for sec in 0..10u64 {
            assert_eq!(calm.record(900, t0 + s(sec)), Storm::Calm);
        }
    }
}
