//! The upstream's answer body, as the client classifies it (`h2h::client::classify`), and what
//! the payment rules make of it (`payments::outcome`).
//!
//! Properties: an answer always carries a result code; a parsed answer re-serialised parses to
//! the same value; amounts are never negative nor large enough to overflow a total; and a body
//! that is not a valid answer never makes a payment or purchase look declined (it stays
//! unknown, to be resolved by advice or a person: "never lost").

#![no_main]

use libfuzzer_sys::fuzz_target;
use mpospay_gateway::h2h::client::classify;
use mpospay_gateway::h2h::{MessageType, Outcome, Response, ResultCode};
use mpospay_gateway::payments::outcome::{judge, judge_advice, AdviceVerdict, Verdict};
use mpospay_gateway::payments::UpstreamFailure;

const FIRST_MESSAGES: [MessageType; 4] = [
    MessageType::Inquiry,
    MessageType::Payment,
    MessageType::Purchase,
    MessageType::BalanceInquiry,
];

fuzz_target!(|body: &[u8]| {
    // Only HTTP 200 can carry an answer, whatever the body says.
    assert_eq!(classify(503, body).kind(), "http_status");

    let outcome = classify(200, body);
    match &outcome {
        Outcome::Answered(response) => check_answer(&outcome, response),
        Outcome::Unknown(_) => {
            assert_eq!(outcome.kind(), "invalid_body");
            for money in [MessageType::Payment, MessageType::Purchase] {
                assert!(
                    matches!(judge(money, &outcome, &[]), Verdict::Unknown(_)),
                    "an unreadable answer to a {money} must leave it unknown"
                );
            }
            assert_eq!(
                judge(MessageType::Inquiry, &outcome, &[]),
                Verdict::Declined(UpstreamFailure::Unavailable)
            );
            assert!(matches!(
                judge_advice(&outcome, &[]),
                AdviceVerdict::AskAgain(_)
            ));
        }
        Outcome::NotSent(_) => panic!("a body cannot be 'not sent'"),
    }
});

fn check_answer(outcome: &Outcome, response: &Response) {
    assert!(!response.result_code.trim().is_empty());

    // Re-serialised, the answer reads back the same (every field is kept as a string).
    let json = serde_json::to_vec(response).expect("a response serializes");
    let again: Response = serde_json::from_slice(&json).expect("a serialized response parses");
    assert_eq!(&again, response);
    match classify(200, &json) {
        Outcome::Answered(same) => assert_eq!(&*same, response),
        other => panic!("a re-serialised answer is no longer an answer: {other:?}"),
    }

    // Amounts are digit strings: never negative, and a total never overflows.
    let amounts = [
        response.nominal_amount(),
        response.admin_fee(),
        response.balance(),
    ];
    for amount in amounts.into_iter().flatten() {
        assert!((0..1_000_000_000_000_000).contains(&amount), "{amount}");
    }
    if let (Some(nominal), Some(admin)) = (amounts[0], amounts[1]) {
        assert!(nominal.checked_add(admin).is_some());
    }

    // The result code keeps the upstream's text (only `00` is spelled `000`).
    let code = ResultCode::parse(&response.result_code);
    let trimmed = response.result_code.trim();
    if trimmed == "00" {
        assert_eq!(code.as_str(), "000");
    } else {
        assert_eq!(code.as_str(), trimmed);
    }

    // Success, and only success, counts as success; for any message type.
    for message_type in FIRST_MESSAGES {
        let verdict = judge(message_type, outcome, &[]);
        assert_eq!(verdict == Verdict::Succeeded, code.is_success());
    }
    let advice = judge_advice(outcome, &[]);
    assert_eq!(advice == AdviceVerdict::Succeeded, code.is_success());

    // The receipt is read from whatever the upstream put in info1.
    let _ = mpospay_gateway::domain::parse_receipt(&response.info1);
}
