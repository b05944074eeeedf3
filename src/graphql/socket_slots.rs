//! How many WebSocket operations one caller holds open in this process, across all of their
//! sockets (`TANDEM_WS_MAX_SUBSCRIPTIONS_PER_TOKEN`). A slot is taken before an operation starts
//! and given back when it ends, however it ends: completed, refused, timed out, or its socket
//! closed. Taking is one step under a lock, never "count, then add".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The open operations of every caller in this process.
#[derive(Debug)]
pub struct SocketSlots {
    limit: usize,
    held: Mutex<HashMap<String, usize>>,
}

/// One open operation of `caller`; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<SocketSlots>,
    caller: String,
}

impl SocketSlots {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            held: Mutex::default(),
        }
    }

    /// The most one caller may hold at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for `caller`, or `None` when they already hold [`SocketSlots::limit`] of them.
    pub fn take(self: &Arc<Self>, caller: &str) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(caller.to_owned()).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            caller: caller.to_owned(),
        })
    }

    /// How many slots `caller` holds now.
    pub fn held_by(&self, caller: &str) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(caller).copied().unwrap_or_default()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.caller) {
            *count = count.saturating_sub(1);
            // Only callers holding something have an entry, so the map is bounded by what is
            // open.
            if *count == 0 {
                held.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_at_most_the_limit_and_slots_come_back_when_dropped() {
        let slots = Arc::new(SocketSlots::new(2));
        let first = slots.take("customer:ann").unwrap();
        let _second = slots.take("customer:ann").unwrap();
        assert!(slots.take("customer:ann").is_none());
        assert!(slots.take("customer:bob").is_some(), "Bob has his own");
        drop(first);
        assert_eq!(slots.held_by("customer:ann"), 1);
        assert!(slots.take("customer:ann").is_some());
    }

    #[test]
    fn a_caller_holding_nothing_leaves_no_entry() {
        let slots = Arc::new(SocketSlots::new(1));
        drop(slots.take("service:shop").unwrap());
        assert!(slots.held.lock().unwrap().is_empty());
    }
}
