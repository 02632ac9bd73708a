//! Payment of an inquired bill, and prepaid purchase: the money-moving use cases.
//!
//! The order of effects is what makes them safe (Stripe's "atomic phases"):
//! 1–2. the transaction is committed in `sending` with its trxId, and the Idempotency-Key is
//!    linked to it in the same database transaction,
//! 3. the message is sent (no database transaction open),
//! 4. the answer is committed: `succeeded`, `failed`, or `pending` when the outcome is unknown.
//!
//! A crash between 2 and 4 leaves `sending`, which the reconciler treats as unknown.

use chrono::Duration;
use uuid::Uuid;

use crate::domain::{
    BillNumber, CustomerNumber, IdempotencyKey, ProductCode, Transaction, TransactionKind,
    TransactionStatus,
};
use crate::h2h::client::Exchange;
use crate::h2h::{format_retrieval, Draft, MessageType};

use super::error::PaymentError;
use super::outcome::{judge, Verdict};
use super::{absorb_response, message_type_of, Caller, Payments};

/// The longest duplicate guard window honoured (ten years; a larger setting means the same).
const MAX_DUPLICATE_WINDOW_SECS: u64 = 10 * 366 * 24 * 3600;

/// A validated payment request.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub bill_number: BillNumber,
    pub product: ProductCode,
    pub inquiry_id: Uuid,
    /// Guard: the inquired total must equal it.
    pub amount: Option<i64>,
}

/// A validated purchase request.
#[derive(Debug, Clone)]
pub struct PurchaseRequest {
    pub product: ProductCode,
    pub customer_number: CustomerNumber,
    /// Buys even if the duplicate purchase guard would refuse it.
    pub allow_duplicate: bool,
}

impl Payments {
    /// Pays an inquired bill with the inquiry's paymentCode.
    #[tracing::instrument(skip_all, fields(inquiry_id = %request.inquiry_id))]
    pub async fn pay(
        &self,
        caller: &Caller,
        request: &PaymentRequest,
        key: &IdempotencyKey,
    ) -> Result<Transaction, PaymentError> {
        let inquiry = match self.store.get_transaction(request.inquiry_id).await? {
            Some(inquiry)
                if caller.may_see(&inquiry) && inquiry.kind == TransactionKind::Inquiry =>
            {
                inquiry
            }
            _ => return Err(PaymentError::NotFound("inquiry")),
        };
        if inquiry.bill_number != request.bill_number.as_str() {
            return Err(PaymentError::InquiryMismatch {
                field: "billNumber",
            });
        }
        if inquiry.product != request.product.as_str() {
            return Err(PaymentError::InquiryMismatch { field: "product" });
        }
        let payment_code = match (&inquiry.status, &inquiry.payment_code) {
            (TransactionStatus::Succeeded, Some(code)) => code.clone(),
            _ => {
                return Err(PaymentError::InquiryNotPayable {
                    inquiry_id: inquiry.id,
                })
            }
        };
        let now = self.now();
        if inquiry.expires_at.is_some_and(|expires| expires <= now) {
            return Err(PaymentError::InquiryExpired {
                inquiry_id: inquiry.id,
            });
        }
        let expected = inquiry.total().unwrap_or(0);
        if let Some(given) = request.amount {
            if given != expected {
                return Err(PaymentError::AmountMismatch { expected, given });
            }
        }

        let permit = self.admit()?;
        let trx_id = self.next_trx_id().await?;
        let zone = self.upstream.credentials().zone;
        let mut payment = Transaction::begin(
            TransactionKind::Payment,
            &caller.client,
            &inquiry.product,
            &inquiry.bill_number,
            &trx_id.to_string(),
            &format_retrieval(now, zone),
            now,
        );
        payment.request_id = caller.request_id.clone();
        payment.inquiry_id = Some(inquiry.id);
        payment.payment_code = Some(payment_code.clone());
        payment.amount = inquiry.amount;
        payment.admin_fee = inquiry.admin_fee;
        payment.info1 = inquiry.info1.clone();
        self.begin(&payment, caller, key).await?;

        let exchange = self
            .send_and_record(
                Draft {
                    message_type: MessageType::Payment,
                    product: payment.product.clone(),
                    bill_number: payment.bill_number.clone(),
                    trx_id: payment.trx_id.clone(),
                    payment_code: Some(payment_code),
                },
                Some(payment.id),
                caller.request_id.as_deref(),
                Some(permit),
            )
            .await?;
        self.settle(payment, &exchange).await
    }

    /// Buys a prepaid product (no inquiry, no paymentCode until answered).
    #[tracing::instrument(skip_all, fields(product = %request.product))]
    pub async fn purchase(
        &self,
        caller: &Caller,
        request: &PurchaseRequest,
        key: &IdempotencyKey,
    ) -> Result<Transaction, PaymentError> {
        let permit = self.admit()?;
        let now = self.now();
        // The duplicate guard's check and the insert below run under the triple's lock, so that
        // of two taps at once the second sees the first's row (duplicate_guard.rs).
        let window = self.settings.duplicate_window_secs;
        let _serialised = if window > 0 && !request.allow_duplicate {
            let lock = self
                .purchase_locks
                .lock(
                    &caller.client,
                    request.product.as_str(),
                    request.customer_number.as_str(),
                )
                .await;
            // Held to ten years, so that the window's start is a date every database stores.
            let since = now - Duration::seconds(window.min(MAX_DUPLICATE_WINDOW_SECS) as i64);
            if let Some(earlier) = self
                .store
                .recent_purchase(
                    &caller.client,
                    key.as_str(),
                    request.product.as_str(),
                    request.customer_number.as_str(),
                    since,
                )
                .await?
            {
                return Err(PaymentError::PossibleDuplicate(earlier));
            }
            Some(lock)
        } else {
            None
        };
        let trx_id = self.next_trx_id().await?;
        let zone = self.upstream.credentials().zone;
        let mut purchase = Transaction::begin(
            TransactionKind::Purchase,
            &caller.client,
            request.product.as_str(),
            request.customer_number.as_str(),
            &trx_id.to_string(),
            &format_retrieval(now, zone),
            now,
        );
        purchase.request_id = caller.request_id.clone();
        self.begin(&purchase, caller, key).await?;
        drop(_serialised);

        let exchange = self
            .send_and_record(
                Draft {
                    message_type: MessageType::Purchase,
                    product: purchase.product.clone(),
                    bill_number: purchase.bill_number.clone(),
                    trx_id: purchase.trx_id.clone(),
                    payment_code: None,
                },
                Some(purchase.id),
                caller.request_id.as_deref(),
                Some(permit),
            )
            .await?;
        self.settle(purchase, &exchange).await
    }

    /// Steps 1 and 2: commit the intent in `sending`, linked to its key (one commit).
    async fn begin(
        &self,
        transaction: &Transaction,
        caller: &Caller,
        key: &IdempotencyKey,
    ) -> Result<(), PaymentError> {
        self.store
            .insert_transaction_for_key(transaction, &caller.client, key.as_str())
            .await?;
        Ok(())
    }

    /// Step 4: commit what the answer means.
    async fn settle(
        &self,
        mut transaction: Transaction,
        exchange: &Exchange,
    ) -> Result<Transaction, PaymentError> {
        let message_type = message_type_of(&transaction);
        if let Some(response) = exchange.outcome.response() {
            absorb_response(&mut transaction, response);
        }
        let now = self.now();
        transaction.updated_at = now;
        let verdict = judge(
            message_type,
            &exchange.outcome,
            &self.settings.unknown_outcome_codes,
        );
        let mut failure = None;
        match verdict {
            Verdict::Succeeded => {
                transaction.status = TransactionStatus::Succeeded;
                transaction.completed_at = Some(now);
            }
            Verdict::Declined(declined) => {
                transaction.status = TransactionStatus::Failed;
                transaction.completed_at = Some(now);
                transaction.error_code = Some(declined.code().to_string());
                failure = Some(declined);
            }
            Verdict::Unknown(reason) if message_type == MessageType::Payment => {
                tracing::warn!(trx_id = %transaction.trx_id, %reason, "payment outcome unknown: advice will resolve it");
                transaction.status = TransactionStatus::Pending;
                transaction.next_advice_at =
                    Some(now + Duration::from_std(self.advice_delay(0)).unwrap_or_default());
            }
            Verdict::Unknown(reason) => {
                tracing::error!(trx_id = %transaction.trx_id, %reason, "purchase outcome unknown: a person must review it");
                transaction.status = TransactionStatus::Review;
                transaction.review_reason = Some(format!(
                    "{reason}; a purchase has no paymentCode, so advice cannot ask about it"
                ));
            }
        }
        match self
            .commit_state(&transaction, TransactionStatus::Sending)
            .await
        {
            Ok(()) => {}
            // The database held this request up past the stale-sending sweep's grace: the
            // reconciler took the row over and resolves it with advice. Answer its state.
            Err(crate::store::StoreError::Conflict) => {
                let current = self.store.get_transaction(transaction.id).await?;
                return Ok(current.unwrap_or(transaction));
            }
            Err(error) => return Err(error.into()),
        }
        match failure {
            None => Ok(transaction),
            Some(failure) => Err(PaymentError::Upstream {
                failure,
                result: exchange
                    .outcome
                    .response()
                    .map(|r| (r.result_code.clone(), r.result_desc.clone())),
                transaction_id: Some(transaction.id),
            }),
        }
    }
}
