//! What became of one exchange, as the gateway stores and counts it: the kind of its
//! [`Outcome`], without the details.

use super::client::{Outcome, UnknownReason};

/// What became of one exchange, as stored: the kind of its [`Outcome`], without the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeOutcome {
    Answered,
    NotSent,
    Timeout,
    ConnectionLost,
    HttpStatus,
    InvalidBody,
}

impl ExchangeOutcome {
    const ALL: [ExchangeOutcome; 6] = [
        ExchangeOutcome::Answered,
        ExchangeOutcome::NotSent,
        ExchangeOutcome::Timeout,
        ExchangeOutcome::ConnectionLost,
        ExchangeOutcome::HttpStatus,
        ExchangeOutcome::InvalidBody,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeOutcome::Answered => "answered",
            ExchangeOutcome::NotSent => "not_sent",
            ExchangeOutcome::Timeout => "timeout",
            ExchangeOutcome::ConnectionLost => "connection_lost",
            ExchangeOutcome::HttpStatus => "http_status",
            ExchangeOutcome::InvalidBody => "invalid_body",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|outcome| outcome.as_str() == s)
    }
}

impl From<&Outcome> for ExchangeOutcome {
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Answered(_) => ExchangeOutcome::Answered,
            Outcome::NotSent(_) => ExchangeOutcome::NotSent,
            Outcome::Unknown(UnknownReason::Timeout) => ExchangeOutcome::Timeout,
            Outcome::Unknown(UnknownReason::Connection(_)) => ExchangeOutcome::ConnectionLost,
            Outcome::Unknown(UnknownReason::HttpStatus(_)) => ExchangeOutcome::HttpStatus,
            Outcome::Unknown(UnknownReason::InvalidBody(_)) => ExchangeOutcome::InvalidBody,
        }
    }
}
