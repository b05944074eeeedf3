//! One database read for many callers asking the same question at once. Dashboards poll the
//! same ranges; at 32 concurrent `referralMetrics` calls each ran its own aggregate and the p99
//! was the queue of them (docs/performance.md).
//!
//! Sharing never serves an answer read before the caller asked: a caller joins the next read to
//! start, not one already running, so a write that committed before the call is always seen.
//! Each caller takes a ticket on arrival; the read records the last ticket it covers when it
//! starts; a waiter whose ticket is covered takes that answer, any other runs the next read.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::AppError;

/// Shared reads, one queue per key (a metric's range, say).
pub struct SharedReads<K, V> {
    queues: Mutex<HashMap<K, Arc<Queue<V>>>>,
}

struct Queue<V> {
    tickets: AtomicU64,
    /// The last answer and the last ticket it covers; only a successful read is shared.
    last: tokio::sync::Mutex<Option<(u64, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> SharedReads<K, V> {
    pub fn new() -> Self {
        Self {
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// The answer of `read` for `key`, run now or shared with callers who asked with the same
    /// key at the same time.
    pub async fn get<F, Fut>(&self, key: K, read: F) -> Result<V, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, AppError>>,
    {
        let queue = self.queue(&key);
        let answer = Self::through(&queue, read).await;
        drop(queue);
        self.forget_if_idle(&key);
        answer
    }

    async fn through<F, Fut>(queue: &Queue<V>, read: F) -> Result<V, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, AppError>>,
    {
        let ticket = queue.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        // tokio's mutex is fair: waiters take it in arrival order.
        let mut last = queue.last.lock().await;
        if let Some((covered, answer)) = last.as_ref()
            && *covered >= ticket
        {
            return Ok(answer.clone());
        }
        // Everyone holding a ticket now arrived before this read starts.
        let covers = queue.tickets.load(Ordering::SeqCst);
        let answer = read().await?;
        *last = Some((covers, answer.clone()));
        Ok(answer)
    }

    fn queue(&self, key: &K) -> Arc<Queue<V>> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Queue {
                    tickets: AtomicU64::new(0),
                    last: tokio::sync::Mutex::new(None),
                })
            })
            .clone()
    }

    /// Drops a key's queue once no caller holds it, so keys (any range a caller names) do not
    /// pile up and no answer is kept past the calls that shared it.
    fn forget_if_idle(&self, key: &K) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if queues.get(key).is_some_and(|q| Arc::strong_count(q) == 1) {
            queues.remove(key);
        }
    }

    /// How many keys have callers now.
    pub fn keys_in_use(&self) -> usize {
        self.queues.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Default for SharedReads<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn callers_waiting_behind_a_read_share_the_next_one_and_none_gets_an_older_answer() {
        let shared = Arc::new(SharedReads::<u8, usize>::new());
        let reads = Arc::new(AtomicUsize::new(0));
        let read = |reads: Arc<AtomicUsize>| async move {
            let n = reads.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(n)
        };
        let first = {
            let (shared, reads) = (shared.clone(), reads.clone());
            tokio::spawn(async move { shared.get(1, || read(reads)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // These arrive while read 1 runs: read 1 started before them, so they must not take it.
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let (shared, reads) = (shared.clone(), reads.clone());
                tokio::spawn(async move { shared.get(1, || read(reads)).await })
            })
            .collect();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap().unwrap(), 2, "all share read 2");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        assert_eq!(shared.keys_in_use(), 0, "an idle key is forgotten");
    }

    #[tokio::test]
    async fn a_failed_read_is_not_shared_and_other_keys_do_not_wait() {
        let shared = SharedReads::<u8, usize>::new();
        let failed = shared
            .get(1, || async { Err(AppError::NotFound("no".into())) })
            .await;
        assert!(failed.is_err());
        assert_eq!(shared.get(1, || async { Ok(7) }).await.unwrap(), 7);
        assert_eq!(shared.get(2, || async { Ok(8) }).await.unwrap(), 8);
        assert_eq!(
            shared.get(1, || async { Ok(9) }).await.unwrap(),
            9,
            "a caller who comes after a read has finished gets a read of its own"
        );
    }
}
