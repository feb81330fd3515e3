//! The standard retry delay (ARCHITECTURE §5.7): 1 s, ×2 per attempt, capped, ±25 % jitter,
//! reset after a success.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(cap: Duration) -> Backoff {
        Backoff { base: Duration::from_secs(1), cap, attempt: 0 }
    }

    /// The delay before the next attempt (without jitter: the middle of the range).
    fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(30)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay to wait now, with jitter; the next one doubles.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let jitter = 0.75 + rand::random::<f64>() * 0.5;
        nominal.mul_f64(jitter)
    }

    /// After a success, the next failure waits the base delay again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(60));
        let expected = [1u64, 2, 4, 8, 16, 32, 60, 60, 60];
        for want in expected {
            let d = b.next_delay().as_secs_f64();
            let want = want as f64;
            assert!(d >= want * 0.75 - 1e-9 && d <= want * 1.25 + 1e-9, "{d} not within 25% of {want}");
        }
        b.reset();
        let d = b.next_delay().as_secs_f64();
        assert!((0.75..=1.25).contains(&d));
    }

    #[test]
    fn many_attempts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(5));
        for _ in 0..200 {
            assert!(b.next_delay() <= Duration::from_millis(6250));
        }
    }
}
