//! What the simulated host remembers: issued `paymentCode`s, processed payments (for advice),
//! the deposit balance, and the log of received messages.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use super::catalog::Bill;
use super::response::Answer;

/// One message that passed authentication and JSON parsing, as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The `type` field as sent (`inquiry`, `payment`, …, or whatever else arrived).
    pub message_type: String,
    pub trx_id: String,
    pub product: String,
    pub bill_number: String,
    /// `paymentCode`, if the message carried the field.
    pub payment_code: Option<String>,
    /// The result code the host decided on; empty when the message was never processed
    /// ([`Delivery::Held`], or a `97005…` message that "never arrived").
    pub result_code: String,
    /// What the client was sent.
    pub delivery: Delivery,
}

/// How an answer went back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// HTTP 200 with the JSON answer, right away.
    Answered,
    /// HTTP 200 with the JSON answer, after a delay (`97002…`, `ForcedFault::Delay`).
    Delayed,
    /// No answer at all: the connection was dropped before any byte (`97001`, `97005`, `97006`).
    Lost,
    /// HTTP 200 and half the JSON body, then the connection dropped (`97008…`).
    Truncated,
    /// HTTP 500 (`97003…`).
    ServerError,
    /// HTTP 200 with a body that is not JSON (`97004…`, `ForcedFault::Garbage`).
    NotJson,
    /// Held without an answer until the sandbox stopped (`ForcedFault::Blackhole`).
    Held,
}

/// A `paymentCode` the host issued, and the bill it pays.
#[derive(Debug, Clone)]
pub(crate) struct IssuedCode {
    pub product: String,
    pub bill_number: String,
    /// The inquiry's `trxId`: payment answers carry it (see the vendor examples).
    pub inquiry_trx_id: String,
    pub bill: Bill,
    pub paid: bool,
}

/// A payment or purchase the host processed, keyed by its `(trxId, paymentCode)`.
#[derive(Debug, Clone)]
pub(crate) struct ProcessedPayment {
    /// The outcome to report on advice (type, retrieval and signature are the advice's own).
    pub outcome: Answer,
    /// `97006…`: every advice answers this code instead (the payment can never be resolved).
    pub advice_code: Option<&'static str>,
}

/// The host's memory, behind one lock.
pub(crate) struct State {
    rng: StdRng,
    pub balance: i64,
    pub codes: HashMap<String, IssuedCode>,
    pub payments: HashMap<(String, String), ProcessedPayment>,
    pub received: Vec<ReceivedMessage>,
    next_reference: u64,
}

impl State {
    pub fn new(seed: u64, balance: i64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            balance,
            codes: HashMap::new(),
            payments: HashMap::new(),
            received: Vec::new(),
            next_reference: 0,
        }
    }

    /// A fresh `paymentCode`: 32 lowercase hex digits from the seeded generator.
    pub fn new_payment_code(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// The next 16-digit receipt reference (`NO.REF`).
    pub fn new_reference(&mut self) -> String {
        self.next_reference += 1;
        format!("{:016}", 41_002_220_476_240 + self.next_reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_codes_are_seeded_lowercase_hex() {
        let mut a = State::new(7, 0);
        let mut b = State::new(7, 0);
        let mut c = State::new(8, 0);
        let first = a.new_payment_code();
        assert_eq!(first.len(), 32);
        assert!(first
            .bytes()
            .all(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(&x)));
        assert_eq!(first, b.new_payment_code());
        assert_ne!(a.new_payment_code(), first);
        assert_ne!(c.new_payment_code(), first);
    }
}
