//! Events: what a client acts on, recorded with the state that caused it (API.md, the table of
//! event types) and sent as the webhook body exactly as the feed shows it.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::TransactionStatus;

/// `evt_` + a UUIDv7 in simple form: ids sort by creation, so the feed pages by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

const EVENT_ID_PREFIX: &str = "evt_";

impl EventId {
    pub fn generate() -> Self {
        Self(format!("{EVENT_ID_PREFIX}{}", Uuid::now_v7().simple()))
    }

    /// Parses an id from a query (`after=`) or the store; `None` when it is not one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(EVENT_ID_PREFIX)?;
        let valid = hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The five event types of API.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "transaction.pending")]
    TransactionPending,
    #[serde(rename = "transaction.succeeded")]
    TransactionSucceeded,
    #[serde(rename = "transaction.failed")]
    TransactionFailed,
    #[serde(rename = "transaction.review")]
    TransactionReview,
    #[serde(rename = "deposit.low")]
    DepositLow,
}

/// A `type` that is none of the five (the text is the caller's input, returned as is).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::TransactionPending,
        EventType::TransactionSucceeded,
        EventType::TransactionFailed,
        EventType::TransactionReview,
        EventType::DepositLow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TransactionPending => "transaction.pending",
            EventType::TransactionSucceeded => "transaction.succeeded",
            EventType::TransactionFailed => "transaction.failed",
            EventType::TransactionReview => "transaction.review",
            EventType::DepositLow => "deposit.low",
        }
    }

    pub fn parse(text: &str) -> Result<Self, UnknownEventType> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownEventType(text.to_string()))
    }

    /// The event a transaction's new state is announced with; `None` for `sending`, which no
    /// client acts on.
    pub fn for_status(status: TransactionStatus) -> Option<Self> {
        match status {
            TransactionStatus::Sending => None,
            TransactionStatus::Pending => Some(EventType::TransactionPending),
            TransactionStatus::Succeeded => Some(EventType::TransactionSucceeded),
            TransactionStatus::Failed => Some(EventType::TransactionFailed),
            TransactionStatus::Review => Some(EventType::TransactionReview),
        }
    }

    /// `transaction.*` events belong to a client; `deposit.*` ones to nobody in particular.
    pub fn is_transaction(self) -> bool {
        self != EventType::DepositLow
    }
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventData {
    /// The transaction as in `GET /v1/transactions/{id}`, without `exchanges`.
    Transaction { transaction: serde_json::Value },
    /// The balance that fell below the threshold (`deposit.low_balance`), rupiah.
    DepositLow { balance: i64, threshold: i64 },
}

/// An event, serialized as API.md gives it: `{"id", "type", "createdAt", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub created_at: DateTime<Utc>,
    pub data: EventData,
}

impl Event {
    /// A `transaction.*` event for a transaction in `status`; `transaction` is its public view.
    /// `None` for a status that has no event.
    pub fn for_transaction(
        status: TransactionStatus,
        transaction: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let kind = EventType::for_status(status)?;
        Some(Self::new(kind, EventData::Transaction { transaction }, now))
    }

    /// A `deposit.low` event.
    pub fn deposit_low(balance: i64, threshold: i64, now: DateTime<Utc>) -> Self {
        Self::new(
            EventType::DepositLow,
            EventData::DepositLow { balance, threshold },
            now,
        )
    }

    fn new(kind: EventType, data: EventData, now: DateTime<Utc>) -> Self {
        Self {
            id: EventId::generate(),
            kind,
            // Microseconds, what both databases keep: the body rebuilt from the stored row for a
            // retry is byte for byte the one first signed.
            created_at: now.trunc_subsecs(6),
            data,
        }
    }

    /// Rebuilds an event from its stored row; `None` when the row is not one this code wrote.
    /// Its [`Event::to_json`] is byte for byte the body first sent.
    pub fn from_stored(
        id: &str,
        kind: &str,
        created_at: DateTime<Utc>,
        data_json: &str,
    ) -> Option<Self> {
        Some(Self {
            id: EventId::parse(id)?,
            kind: EventType::parse(kind).ok()?,
            created_at,
            data: serde_json::from_str(data_json).ok()?,
        })
    }

    /// The webhook body and feed item.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event always serializes")
    }

    /// `data` as stored (JSON text).
    pub fn data_json(&self) -> String {
        serde_json::to_string(&self.data).expect("event data always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_is_exactly_the_shape_of_api_md() {
        let now = "2026-12-01T07:30:25.123456789Z".parse().unwrap();
        let transaction = json!({"id": "0193", "status": "succeeded", "updatedAt": "…"});
        let event =
            Event::for_transaction(TransactionStatus::Succeeded, transaction.clone(), now).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(
            body,
            json!({
                "id": event.id.as_str(),
                "type": "transaction.succeeded",
                "createdAt": "2026-12-01T07:30:25.123456Z",
                "data": {"transaction": transaction},
            })
        );
        let low = Event::deposit_low(900_000, 1_000_000, now);
        let body: serde_json::Value = serde_json::from_slice(&low.to_json()).unwrap();
        assert_eq!(body["type"], "deposit.low");
        assert_eq!(
            body["data"],
            json!({"balance": 900000, "threshold": 1000000})
        );
        let back: Event = serde_json::from_slice(&low.to_json()).unwrap();
        assert_eq!(back, low);
    }

    #[test]
    fn an_event_rebuilt_from_its_row_has_the_same_body() {
        let transaction = json!({"id": "0193", "status": "pending", "amount": 304000,
                                 "receipt": [{"label": "Kode Bayar", "value": "AF08"}]});
        let event =
            Event::for_transaction(TransactionStatus::Pending, transaction, Utc::now()).unwrap();
        let row = Event::from_stored(
            event.id.as_str(),
            event.kind.as_str(),
            event.created_at,
            &event.data_json(),
        )
        .unwrap();
        assert_eq!(row.to_json(), event.to_json());
        assert!(Event::from_stored("x", "deposit.low", event.created_at, "{}").is_none());
    }

    #[test]
    fn ids_are_evt_and_sort_by_creation() {
        let ids: Vec<EventId> = (0..50).map(|_| EventId::generate()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        let first = &ids[0];
        assert!(first.as_str().starts_with("evt_"));
        assert_eq!(EventId::parse(first.as_str()).as_ref(), Some(first));
        for bad in [
            "",
            "evt_",
            "evt_XYZ",
            "0193abc",
            "evt_0193A000000000000000000000000000",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn types_are_named_as_in_api_md_and_only_sending_has_none() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert!(EventType::parse("transaction.sending").is_err());
        assert_eq!(EventType::for_status(TransactionStatus::Sending), None);
        assert_eq!(
            EventType::for_status(TransactionStatus::Review),
            Some(EventType::TransactionReview)
        );
    }
}
