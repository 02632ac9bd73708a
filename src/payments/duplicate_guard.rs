//! The duplicate purchase guard (API.md, "Cashier protections"): a purchase of the same product
//! for the same customer number by the same client as a recent one that succeeded or may have
//! is refused `409 possible_duplicate`, unless the body says `"allowDuplicate": true`. A
//! cashier's double tap sends a fresh Idempotency-Key, so idempotency alone does not catch it.
//!
//! The check and the insert of the new purchase (in `sending`) run under a lock per (client,
//! product, customer number), so that two taps at once do not both pass: the second sees the
//! first's row. The locks are this process's: gateways sharing one database serialise only
//! their own requests (two taps reaching two processes within the few milliseconds between one
//! check and its insert could both pass).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

/// How many locks the (client, product, customer number) triples share: unrelated purchases
/// rarely wait for each other, and memory stays fixed.
const STRIPES: usize = 64;

/// Locks per (client, product, customer number), striped.
#[derive(Debug)]
pub struct PurchaseLocks {
    stripes: Vec<Mutex<()>>,
}

impl PurchaseLocks {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    /// Waits for the lock of this triple; held until the guard drops.
    pub async fn lock(
        &self,
        client: &str,
        product: &str,
        customer_number: &str,
    ) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        (client, product, customer_number).hash(&mut hasher);
        let stripe = (hasher.finish() % STRIPES as u64) as usize;
        self.stripes[stripe].lock().await
    }
}
