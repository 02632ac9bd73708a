//! The deposit balance, from `balanceInquiry`. Each answer is stored as a reading: a point on
//! the deposit's balance chain (see [`super::reconciliation`]).

use chrono::{DateTime, Utc};

use crate::h2h::{Draft, MessageType, BALANCE_PRODUCT};

use super::error::PaymentError;
use super::outcome::{judge, Verdict};
use super::reconciliation::BalanceReading;
use super::{Caller, Payments};

/// The deposit balance and when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub balance: i64,
    pub checked_at: DateTime<Utc>,
}

impl Payments {
    /// Asks the upstream for the deposit balance. The exchange and the reading are recorded; no
    /// transaction is.
    pub async fn balance(&self, caller: &Caller) -> Result<Balance, PaymentError> {
        let permit = self.admit()?;
        let trx_id = self.next_trx_id().await?;
        let account = self.upstream.credentials().account.clone();
        let exchange = self
            .send_and_record(
                Draft {
                    message_type: MessageType::BalanceInquiry,
                    product: BALANCE_PRODUCT.into(),
                    bill_number: account,
                    trx_id: trx_id.to_string(),
                    payment_code: None,
                },
                None,
                caller.request_id.as_deref(),
                Some(permit),
            )
            .await?;
        let result = exchange
            .outcome
            .response()
            .map(|r| (r.result_code.clone(), r.result_desc.clone()));
        match judge(MessageType::BalanceInquiry, &exchange.outcome, &[]) {
            Verdict::Succeeded => match exchange.outcome.response().and_then(|r| r.balance()) {
                Some(balance) => {
                    let checked_at = self.now();
                    self.store
                        .record_balance_reading(&BalanceReading {
                            at: checked_at,
                            balance,
                        })
                        .await?;
                    Ok(Balance {
                        balance,
                        checked_at,
                    })
                }
                None => Err(PaymentError::Upstream {
                    failure: super::UpstreamFailure::Unavailable,
                    result,
                    transaction_id: None,
                }),
            },
            Verdict::Declined(failure) => Err(PaymentError::Upstream {
                failure,
                result,
                transaction_id: None,
            }),
            Verdict::Unknown(_) => unreachable!("a balance inquiry outcome is never unknown"),
        }
    }
}
