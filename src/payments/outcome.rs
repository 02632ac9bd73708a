//! What an upstream answer means for a transaction: the rules of API.md ("Payments never
//! happen twice", "Upstream result → HTTP"), kept apart from I/O so they can be read and tested.

use crate::h2h::{MessageType, Outcome, ResultCode, UnknownReason};

use super::error::UpstreamFailure;

/// The verdict on one answer to an inquiry, payment, purchase or balance inquiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    /// A definite "no": nothing was applied.
    Declined(UpstreamFailure),
    /// The upstream may have applied it: ask with advice (payments) or a person (purchases).
    Unknown(String),
}

/// Classifies the outcome of a first message (not advice).
pub fn judge(message_type: MessageType, outcome: &Outcome, unknown_codes: &[String]) -> Verdict {
    let moves_money = matches!(message_type, MessageType::Payment | MessageType::Purchase);
    let response = match outcome {
        Outcome::Answered(response) => response,
        Outcome::NotSent(_) => return Verdict::Declined(UpstreamFailure::Unavailable),
        Outcome::Unknown(reason) if moves_money => return Verdict::Unknown(describe(reason)),
        Outcome::Unknown(UnknownReason::Timeout) => {
            return Verdict::Declined(UpstreamFailure::Timeout)
        }
        Outcome::Unknown(_) => return Verdict::Declined(UpstreamFailure::Unavailable),
    };
    let code = ResultCode::parse(&response.result_code);
    if code.is_success() {
        return Verdict::Succeeded;
    }
    if moves_money
        && (code.is_processing_failure() || unknown_codes.iter().any(|c| c == code.as_str()))
    {
        return Verdict::Unknown(format!("upstream answered {code}: outcome unknown"));
    }
    if message_type == MessageType::Payment && code == ResultCode::Code995 {
        return Verdict::Unknown("upstream answered 995: paymentCode already paid".into());
    }
    Verdict::Declined(failure_for(message_type, &code))
}

/// The failure group of a non-success code for a message type.
pub fn failure_for(message_type: MessageType, code: &ResultCode) -> UpstreamFailure {
    let payment_like = matches!(message_type, MessageType::Payment | MessageType::Advice);
    match code {
        ResultCode::Maintenance | ResultCode::ServiceMaintenance => UpstreamFailure::Maintenance,
        ResultCode::CutOff(_) => UpstreamFailure::CutOff,
        ResultCode::InvalidProduct => UpstreamFailure::InvalidProduct,
        ResultCode::Code995 if !payment_like => UpstreamFailure::InvalidProduct,
        ResultCode::Code996 if payment_like => UpstreamFailure::InquiryExpired,
        ResultCode::NoReferencePrice
        | ResultCode::AccountBlocked
        | ResultCode::NoRoutingHost
        | ResultCode::SignatureMismatch
        | ResultCode::Code996
        | ResultCode::MandatoryFieldEmpty
        | ResultCode::InvalidTrxIdLength
        | ResultCode::EmptyParameter
        | ResultCode::InvalidParameter => UpstreamFailure::Rejected,
        ResultCode::EmptyContent | ResultCode::DatabaseFailure | ResultCode::ProcessingFailed => {
            UpstreamFailure::Error
        }
        ResultCode::Code995 | ResultCode::Success | ResultCode::Other(_) => {
            UpstreamFailure::BillerDeclined
        }
    }
}

/// What an advice answer means for a pending payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdviceVerdict {
    Succeeded,
    /// A biller's decline: the payment was not applied.
    Failed(UpstreamFailure),
    /// `996`: the upstream does not know the payment (yet).
    NotFound,
    /// No usable answer (maintenance, transport, processing failure): ask again later.
    AskAgain(String),
}

/// Classifies an advice outcome.
pub fn judge_advice(outcome: &Outcome, unknown_codes: &[String]) -> AdviceVerdict {
    let response = match outcome {
        Outcome::Answered(response) => response,
        Outcome::NotSent(reason) => return AdviceVerdict::AskAgain(format!("not sent: {reason}")),
        Outcome::Unknown(reason) => return AdviceVerdict::AskAgain(describe(reason)),
    };
    let code = ResultCode::parse(&response.result_code);
    match code {
        ResultCode::Success => AdviceVerdict::Succeeded,
        ResultCode::Code996 => AdviceVerdict::NotFound,
        ref c
            if c.is_maintenance()
                || c.is_processing_failure()
                || *c == ResultCode::Code995
                || unknown_codes.iter().any(|u| u == c.as_str()) =>
        {
            AdviceVerdict::AskAgain(format!("advice answered {c}"))
        }
        // Our own misconfiguration (e.g. 994) says nothing about the payment.
        ref c if failure_for(MessageType::Advice, c) == UpstreamFailure::Rejected => {
            AdviceVerdict::AskAgain(format!("advice rejected with {c}"))
        }
        ref c => AdviceVerdict::Failed(failure_for(MessageType::Payment, c)),
    }
}

fn describe(reason: &UnknownReason) -> String {
    match reason {
        UnknownReason::Timeout => "no answer within the timeout".into(),
        UnknownReason::Connection(detail) => format!("connection lost: {detail}"),
        UnknownReason::HttpStatus(status) => format!("upstream answered HTTP {status}"),
        UnknownReason::InvalidBody(detail) => format!("unparseable answer: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2h::Response;

    fn answered(code: &str) -> Outcome {
        Outcome::Answered(Box::new(Response {
            result_code: code.into(),
            ..Response::default()
        }))
    }

    #[test]
    fn the_api_table_holds_for_inquiries() {
        let inquiry = |code| judge(MessageType::Inquiry, &answered(code), &[]);
        assert_eq!(inquiry("000"), Verdict::Succeeded);
        assert_eq!(
            inquiry("102"),
            Verdict::Declined(UpstreamFailure::Maintenance)
        );
        assert_eq!(
            inquiry("998"),
            Verdict::Declined(UpstreamFailure::Maintenance)
        );
        assert_eq!(inquiry("105"), Verdict::Declined(UpstreamFailure::CutOff));
        assert_eq!(
            inquiry("995"),
            Verdict::Declined(UpstreamFailure::InvalidProduct)
        );
        assert_eq!(inquiry("996"), Verdict::Declined(UpstreamFailure::Rejected));
        assert_eq!(inquiry("109"), Verdict::Declined(UpstreamFailure::Error));
        assert_eq!(
            inquiry("047"),
            Verdict::Declined(UpstreamFailure::BillerDeclined)
        );
        let timeout = Outcome::Unknown(UnknownReason::Timeout);
        assert_eq!(
            judge(MessageType::Inquiry, &timeout, &[]),
            Verdict::Declined(UpstreamFailure::Timeout)
        );
    }

    #[test]
    fn unknown_outcomes_on_money_messages_are_never_declines() {
        for outcome in [
            Outcome::Unknown(UnknownReason::Timeout),
            Outcome::Unknown(UnknownReason::HttpStatus(500)),
            answered("108"),
            answered("198"),
            answered("995"),
        ] {
            assert!(matches!(
                judge(MessageType::Payment, &outcome, &[]),
                Verdict::Unknown(_)
            ));
        }
        assert!(matches!(
            judge(MessageType::Purchase, &answered("X1"), &["X1".into()]),
            Verdict::Unknown(_)
        ));
        assert_eq!(
            judge(MessageType::Payment, &answered("996"), &[]),
            Verdict::Declined(UpstreamFailure::InquiryExpired)
        );
        assert_eq!(
            judge(
                MessageType::Payment,
                &Outcome::NotSent("refused".into()),
                &[]
            ),
            Verdict::Declined(UpstreamFailure::Unavailable)
        );
    }

    #[test]
    fn advice_keeps_asking_unless_the_answer_is_definite() {
        assert_eq!(
            judge_advice(&answered("000"), &[]),
            AdviceVerdict::Succeeded
        );
        assert_eq!(judge_advice(&answered("996"), &[]), AdviceVerdict::NotFound);
        assert!(matches!(
            judge_advice(&answered("102"), &[]),
            AdviceVerdict::AskAgain(_)
        ));
        assert!(matches!(
            judge_advice(&answered("994"), &[]),
            AdviceVerdict::AskAgain(_)
        ));
        assert_eq!(
            judge_advice(&answered("051"), &[]),
            AdviceVerdict::Failed(UpstreamFailure::BillerDeclined)
        );
    }
}
