//! A fixed set of worker threads fed from one queue: FUSE callbacks that may wait (store
//! queries, disk reads) hand their work and their reply here and return at once, so the
//! session loop keeps reading requests.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

pub struct Pool {
    queue: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Pool {
    pub fn new(name: &str, threads: usize) -> std::io::Result<Pool> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..threads.max(1))
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || work(&rx))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Pool { queue: Mutex::new(Some(tx)), threads: Mutex::new(threads) })
    }

    /// Queues `job`; after [`Pool::shutdown`] it runs on the caller's thread.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        match queue.as_ref() {
            Some(tx) => {
                if let Err(unsent) = tx.send(Box::new(job)) {
                    drop(queue);
                    (unsent.0)();
                }
            }
            None => {
                drop(queue);
                job();
            }
        }
    }

    /// Lets the queued jobs finish and stops the threads.
    pub fn shutdown(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        let threads: Vec<_> = self.threads.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_held_job_does_not_hold_up_the_others() {
        let pool = Pool::new("t", 2).unwrap();
        let (tx, rx) = channel();
        let (release, held) = channel::<()>();
        let slow = tx.clone();
        pool.run(move || {
            let _ = held.recv(); // held until the test says so, however long that is
            let _ = slow.send("slow");
        });
        pool.run(move || {
            let _ = tx.send("fast");
        });
        // The fast job finishes while the other is still held: the second worker took it.
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), "fast");
        release.send(()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), "slow");
    }
}
