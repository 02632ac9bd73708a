//! The events payments and purchases announce (API.md, "Notifications"): one when a
//! transaction reaches a state a client acts on, committed with that state.

use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::{Transaction, TransactionKind, TransactionStatus};
use crate::http::views::TransactionView;
use crate::webhooks::Event;

/// The event announcing that `transaction` moved from `previous` to its status: `None` for an
/// inquiry, for a move that keeps the status (another advice that changed nothing), and for
/// `sending`.
pub fn event_for(
    transaction: &Transaction,
    previous: TransactionStatus,
    now: DateTime<Utc>,
) -> Option<Event> {
    if transaction.kind == TransactionKind::Inquiry || transaction.status == previous {
        return None;
    }
    // The times as the database keeps them (microseconds), so that the event's transaction is
    // the one `GET /v1/transactions/{id}` shows.
    let mut stored = transaction.clone();
    stored.created_at = stored.created_at.trunc_subsecs(6);
    stored.updated_at = stored.updated_at.trunc_subsecs(6);
    stored.completed_at = stored.completed_at.map(|at| at.trunc_subsecs(6));
    let view = serde_json::to_value(TransactionView::from(&stored))
        .expect("a transaction view always serializes");
    Event::for_transaction(transaction.status, view, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: TransactionStatus) -> Transaction {
        let now = Utc::now();
        let mut t = Transaction::begin(
            TransactionKind::Payment,
            "pos-web",
            "2042",
            "AF085713323054",
            "00000001",
            "20261127143025123",
            now,
        );
        t.status = status;
        t
    }

    #[test]
    fn a_new_state_is_announced_with_the_public_view() {
        let t = payment(TransactionStatus::Pending);
        let event = event_for(&t, TransactionStatus::Sending, Utc::now()).unwrap();
        assert_eq!(event.kind.as_str(), "transaction.pending");
        let body: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        let shown = &body["data"]["transaction"];
        assert_eq!(shown["id"], t.id.to_string());
        assert_eq!(shown["status"], "pending");
        assert_eq!(shown["billNumber"], "AF085713323054");
        assert!(shown.get("exchanges").is_none());
    }

    #[test]
    fn no_event_for_an_unchanged_status_or_an_inquiry() {
        let t = payment(TransactionStatus::Pending);
        assert!(event_for(&t, TransactionStatus::Pending, Utc::now()).is_none());
        let mut inquiry = payment(TransactionStatus::Failed);
        inquiry.kind = TransactionKind::Inquiry;
        assert!(event_for(&inquiry, TransactionStatus::Sending, Utc::now()).is_none());
    }
}
