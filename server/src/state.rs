//! `AppState`: what every handler shares. Cheap to clone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_core::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub jwt: Arc<crate::auth::JwtKeys>,
    /// Guarded: login attempts per client IP in the current window.
    pub login_limiter: Arc<Mutex<LoginLimiter>>,
    /// Guarded: `jti` of tokens logged out, with their expiry (unix seconds).
    pub revoked: Arc<Mutex<HashMap<String, i64>>>,
    /// Guarded: signed agent requests seen within the time window.
    pub replay: Arc<Mutex<agent_core::auth::ReplayGuard>>,
}

/// At most `per_minute` login attempts per IP in a sliding minute.
pub struct LoginLimiter {
    per_minute: u32,
    attempts: HashMap<IpAddr, Vec<Instant>>,
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> LoginLimiter {
        LoginLimiter { per_minute, attempts: HashMap::new() }
    }

    /// Records an attempt; `Err(seconds until the next is allowed)` when over the limit.
    pub fn attempt(&mut self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        const WINDOW: Duration = Duration::from_secs(60);
        if self.attempts.len() > 10_000 {
            self.attempts.retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let list = self.attempts.entry(ip).or_default();
        list.retain(|t| now.duration_since(*t) < WINDOW);
        if list.len() as u32 >= self.per_minute {
            let oldest = list.first().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        list.push(now);
        Ok(())
    }
}
