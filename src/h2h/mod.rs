//! The upstream protocol: MPospay B2B host-to-host messages, their signature, result codes and
//! the HTTP client that sends them. See `shared/upstream/PROTOCOL.md`.

pub mod breaker;
pub mod client;
mod exchange_outcome;
pub mod message;
pub mod result_code;
pub mod signature;

pub use breaker::{BreakerSettings, CircuitBreaker, CircuitOpen};
pub use client::{Outcome, UnknownReason, UpstreamClient};
pub use exchange_outcome::ExchangeOutcome;
pub use message::{MessageType, Request, Response};
pub use result_code::ResultCode;
pub use signature::{business_date, format_retrieval, Credentials, Draft, SigningFields};

/// The one path every message type is posted to.
pub const H2H_PATH: &str = "/finsbu/h2h";
/// The exact (case-sensitive) User-Agent the upstream requires.
pub const USER_AGENT: &str = "FinSBUGiroMPospay-B2B";
/// The only account type the B2B API knows.
pub const ACCOUNT_TYPE: &str = "B2B";
/// Balance inquiry is sent with this product code and the account as bill number.
pub const BALANCE_PRODUCT: &str = "CBS";
