//! Inquiry: look a bill up and remember its paymentCode.

use chrono::Duration;

use crate::domain::{BillNumber, ProductCode, Transaction, TransactionKind, TransactionStatus};
use crate::h2h::{format_retrieval, Draft, MessageType};

use super::error::PaymentError;
use super::outcome::{judge, Verdict};
use super::{absorb_response, Caller, Payments};

impl Payments {
    /// Sends an inquiry and records it with its exchange. A succeeded inquiry can be paid until
    /// `expires_at`.
    #[tracing::instrument(skip_all, fields(bill = %bill_number, product = %product))]
    pub async fn inquire(
        &self,
        caller: &Caller,
        bill_number: &BillNumber,
        product: &ProductCode,
    ) -> Result<Transaction, PaymentError> {
        let permit = self.admit()?;
        let trx_id = self.next_trx_id().await?;
        let now = self.now();
        let zone = self.upstream.credentials().zone;
        let mut inquiry = Transaction::begin(
            TransactionKind::Inquiry,
            &caller.client,
            product.as_str(),
            bill_number.as_str(),
            &trx_id.to_string(),
            &format_retrieval(now, zone),
            now,
        );
        inquiry.request_id = caller.request_id.clone();

        // An inquiry moves no money: it is written once, final, with its exchange, after the
        // answer (a crash before that loses only a harmless bill lookup).
        let (exchange, record) = self
            .send(
                Draft {
                    message_type: MessageType::Inquiry,
                    product: inquiry.product.clone(),
                    bill_number: inquiry.bill_number.clone(),
                    trx_id: inquiry.trx_id.clone(),
                    payment_code: None,
                },
                Some(inquiry.id),
                caller.request_id.as_deref(),
                Some(permit),
            )
            .await;
        if let Some(response) = exchange.outcome.response() {
            absorb_response(&mut inquiry, response);
        }
        let now = self.now();
        inquiry.updated_at = now;
        inquiry.completed_at = Some(now);
        let verdict = judge(
            MessageType::Inquiry,
            &exchange.outcome,
            &self.settings.unknown_outcome_codes,
        );
        let failure = match verdict {
            Verdict::Succeeded => {
                inquiry.status = TransactionStatus::Succeeded;
                inquiry.expires_at =
                    Some(now + Duration::seconds(self.settings.inquiry_ttl_secs as i64));
                None
            }
            Verdict::Declined(failure) => {
                inquiry.status = TransactionStatus::Failed;
                inquiry.error_code = Some(failure.code().to_string());
                Some(failure)
            }
            Verdict::Unknown(_) => unreachable!("an inquiry outcome is never unknown"),
        };
        self.store.record_inquiry(&inquiry, &record).await?;
        match failure {
            None => Ok(inquiry),
            Some(failure) => Err(PaymentError::Upstream {
                failure,
                result: exchange
                    .outcome
                    .response()
                    .map(|r| (r.result_code.clone(), r.result_desc.clone())),
                transaction_id: Some(inquiry.id),
            }),
        }
    }
}
