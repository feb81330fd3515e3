//! Fetches in flight, per cache key: a reader whose bytes are being fetched (by another reader
//! or by a read-ahead) waits for that fetch instead of asking again, so concurrent readers of the
//! same missing data share one request.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
pub(crate) struct Flights {
    by_key: Mutex<HashMap<String, Vec<Flight>>>,
}

/// One fetch of `[start, end)`.
#[derive(Clone)]
pub(crate) struct Flight {
    start: u64,
    end: u64,
    done: Arc<(Mutex<bool>, Condvar)>,
}

impl Flight {
    /// Blocks until the fetch ended (whether it succeeded or not).
    pub fn wait(&self) {
        let (lock, cv) = &*self.done;
        let mut done = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            done = cv.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Ends its flight when dropped (after the bytes were recorded, or on failure).
pub(crate) struct Boarding {
    flights: Arc<Flights>,
    key: String,
    flight: Flight,
}

impl Drop for Boarding {
    fn drop(&mut self) {
        let mut by_key = self.flights.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = by_key.get_mut(&self.key) {
            list.retain(|f| !Arc::ptr_eq(&f.done, &self.flight.done));
            if list.is_empty() {
                by_key.remove(&self.key);
            }
        }
        drop(by_key);
        let (lock, cv) = &*self.flight.done;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }
}

impl Flights {
    /// A fetch of `key` in flight that overlaps `[start, end)`.
    pub fn overlapping(&self, key: &str, start: u64, end: u64) -> Option<Flight> {
        let by_key = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        by_key.get(key)?.iter().find(|f| f.start < end && start < f.end).cloned()
    }

    /// `[start, end)` cut short before the first fetch in flight that begins inside it.
    pub fn clip(&self, key: &str, start: u64, end: u64) -> u64 {
        let by_key = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        let list = by_key.get(key).map(Vec::as_slice).unwrap_or_default();
        list.iter().filter(|f| f.start > start && f.start < end).map(|f| f.start).min().unwrap_or(end)
    }

    /// Registers a fetch of `[start, end)`, unless one in flight overlaps it (then `None`: wait
    /// for that one).
    pub fn board(self: &Arc<Self>, key: &str, start: u64, end: u64) -> Option<Boarding> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        let list = by_key.entry(key.to_owned()).or_default();
        if list.iter().any(|f| f.start < end && start < f.end) {
            return None;
        }
        let flight = Flight { start, end, done: Arc::new((Mutex::new(false), Condvar::new())) };
        list.push(flight.clone());
        Some(Boarding { flights: self.clone(), key: key.to_owned(), flight })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_fetches_are_refused_and_waiters_wake_when_one_lands() {
        let flights = Arc::new(Flights::default());
        let first = flights.board("k", 0, 100).unwrap();
        assert!(flights.board("k", 50, 150).is_none(), "overlaps");
        assert!(flights.board("other", 0, 100).is_some(), "another file");
        assert_eq!(flights.clip("k", 0, 100), 100);
        let second = flights.board("k", 100, 200).unwrap();
        assert_eq!(flights.clip("k", 50, 300), 100, "clipped before the next flight");
        let waiter = flights.overlapping("k", 10, 20).unwrap();
        let t = std::thread::spawn(move || waiter.wait());
        drop(first);
        t.join().unwrap();
        assert!(flights.overlapping("k", 10, 20).is_none());
        drop(second);
        assert!(flights.by_key.lock().unwrap().is_empty());
    }
}
