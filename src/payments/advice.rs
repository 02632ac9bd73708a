//! Advice: asking the upstream what became of a payment, with the payment's own trxId and
//! paymentCode (PROTOCOL.md, "Message types"). Advice never applies anything upstream, so it is
//! safe to repeat; what it changes here is guarded by compare-and-set on the status.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::{Transaction, TransactionKind, TransactionStatus};
use crate::h2h::{Draft, MessageType};
use crate::store::StoreError;

use super::error::PaymentError;
use super::outcome::{judge_advice, AdviceVerdict};
use super::{absorb_response, Caller, Payments};

impl Payments {
    /// `POST /v1/transactions/{id}/advice`: one advice now; the updated transaction.
    pub async fn advise_now(&self, caller: &Caller, id: Uuid) -> Result<Transaction, PaymentError> {
        let transaction = self.transaction(caller, id).await?;
        match transaction.kind {
            TransactionKind::Payment => {}
            TransactionKind::Purchase => {
                return Err(PaymentError::AdviceUnavailable {
                    transaction_id: id,
                    reason: "a purchase has no paymentCode for advice to ask about",
                })
            }
            TransactionKind::Inquiry => {
                return Err(PaymentError::AdviceUnavailable {
                    transaction_id: id,
                    reason: "advice asks about payments, not inquiries",
                })
            }
        }
        if transaction.status == TransactionStatus::Sending {
            // Its payment message is in flight right now; the answer will settle it.
            return Ok(transaction);
        }
        self.advise(transaction, caller.request_id.as_deref()).await
    }

    /// Sends advice for `transaction` and applies the answer if it is still unresolved.
    pub(crate) async fn advise(
        &self,
        transaction: Transaction,
        request_id: Option<&str>,
    ) -> Result<Transaction, PaymentError> {
        let Some(payment_code) = transaction.payment_code.clone() else {
            return Err(PaymentError::AdviceUnavailable {
                transaction_id: transaction.id,
                reason: "no paymentCode",
            });
        };
        let exchange = self
            .send_and_record(
                Draft {
                    message_type: MessageType::Advice,
                    product: transaction.product.clone(),
                    bill_number: transaction.bill_number.clone(),
                    trx_id: transaction.trx_id.clone(),
                    payment_code: Some(payment_code),
                },
                Some(transaction.id),
                request_id,
                // Advice keeps its own schedule: the circuit breaker neither stops nor counts it.
                None,
            )
            .await?;
        crate::metrics::record_advice(&judge_advice(
            &exchange.outcome,
            &self.settings.unknown_outcome_codes,
        ));
        if transaction.status.is_final() {
            return Ok(transaction);
        }
        let verdict = judge_advice(&exchange.outcome, &self.settings.unknown_outcome_codes);
        let mut updated = transaction.clone();
        if let Some(response) = exchange.outcome.response() {
            if verdict == AdviceVerdict::Succeeded {
                absorb_response(&mut updated, response);
            } else {
                updated.result_code = Some(response.result_code.clone());
                updated.result_description = Some(response.result_desc.clone());
            }
        }
        self.apply_advice(&mut updated, verdict, self.now());
        match self.commit_state(&updated, transaction.status).await {
            Ok(()) => Ok(updated),
            // Someone else (the reconciler or another client) settled it first.
            Err(StoreError::Conflict) => Ok(self
                .store
                .get_transaction(transaction.id)
                .await?
                .unwrap_or(transaction)),
            Err(error) => Err(error.into()),
        }
    }

    /// The rules of API.md ("Advice outcomes"), applied to one advice answer.
    fn apply_advice(
        &self,
        transaction: &mut Transaction,
        verdict: AdviceVerdict,
        now: DateTime<Utc>,
    ) {
        transaction.advice_attempts += 1;
        transaction.updated_at = now;
        let reason = match verdict {
            AdviceVerdict::Succeeded => {
                transaction.status = TransactionStatus::Succeeded;
                transaction.completed_at = Some(now);
                transaction.next_advice_at = None;
                transaction.error_code = None;
                return;
            }
            AdviceVerdict::Failed(failure) => {
                transaction.status = TransactionStatus::Failed;
                transaction.completed_at = Some(now);
                transaction.next_advice_at = None;
                transaction.error_code = Some(failure.code().to_string());
                return;
            }
            AdviceVerdict::NotFound => {
                let since = *transaction.not_found_since.get_or_insert(now);
                let confirmed =
                    now - since >= Duration::seconds(self.settings.not_found_confirm_secs as i64);
                if confirmed {
                    // The upstream has said "not found" over the whole confirmation span: the
                    // payment never arrived.
                    transaction.status = TransactionStatus::Failed;
                    transaction.completed_at = Some(now);
                    transaction.next_advice_at = None;
                    transaction.error_code = Some("payment_not_found".into());
                    return;
                }
                "advice answered 996 (not found) — confirming".to_string()
            }
            AdviceVerdict::AskAgain(reason) => reason,
        };
        let age = now - transaction.created_at;
        if age >= Duration::seconds(self.settings.review_after_secs as i64) {
            transaction.status = TransactionStatus::Review;
            transaction.next_advice_at = None;
            transaction.review_reason = Some(format!(
                "no final answer after {} advice attempts over {} s; last: {reason}",
                transaction.advice_attempts,
                age.num_seconds()
            ));
            tracing::error!(trx_id = %transaction.trx_id, "payment moved to review");
        } else if transaction.status == TransactionStatus::Pending {
            let delay = self.advice_delay(transaction.advice_attempts);
            transaction.next_advice_at = Some(now + Duration::from_std(delay).unwrap_or_default());
        }
    }
}
