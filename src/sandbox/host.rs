//! The simulated H2H host: validates a parsed message, applies it to the [`State`] and decides
//! the answer and how it is delivered. No I/O here; `server` does the delivering.

use std::time::Duration;

use chrono::NaiveDate;
use md5::{Digest, Md5};
use serde_json::{Map, Value};

use super::catalog::{self, Bill, Product, ProductKind};
use super::config::SandboxConfig;
use super::faults::{biller, result_desc, ForcedFault, Magic, TransportFault};
use super::response::Answer;
use super::state::{Delivery, IssuedCode, ProcessedPayment, ReceivedMessage, State};
use super::validate::{self, Fields};
use crate::h2h::{MessageType, BALANCE_PRODUCT};

/// How the answer goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// HTTP 200, JSON, now.
    Answer,
    /// HTTP 200, JSON, after this delay.
    After(Duration),
    /// The connection drops without a valid answer.
    Lost,
    /// HTTP 500 with a short HTML body.
    ServerError,
    /// HTTP 200 with a body that is not JSON.
    NotJson,
    /// No answer until the sandbox stops.
    Hold,
}

impl Plan {
    fn delivery(self) -> Delivery {
        match self {
            Plan::Answer => Delivery::Answered,
            Plan::After(_) => Delivery::Delayed,
            Plan::Lost => Delivery::Lost,
            Plan::ServerError => Delivery::ServerError,
            Plan::NotJson => Delivery::NotJson,
            Plan::Hold => Delivery::Held,
        }
    }
}

/// The host's decision for one message.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub answer: Answer,
    pub plan: Plan,
    /// False when the host never processed the message (held, or `97005…`).
    processed: bool,
}

impl Reply {
    fn now(answer: Answer) -> Self {
        Self {
            answer,
            plan: Plan::Answer,
            processed: true,
        }
    }
}

/// Handles one authenticated, parsed message: validation, processing, logging.
/// `today` is the business date in the sandbox's zone, the only date a signature may use.
pub(crate) fn process(
    state: &mut State,
    config: &SandboxConfig,
    fault: Option<&ForcedFault>,
    map: &Map<String, Value>,
    today: NaiveDate,
) -> Reply {
    let fields = Fields::from_map(map);
    let parsed_type = MessageType::parse(&fields.message_type);
    let mut reply = match fault {
        Some(ForcedFault::Blackhole) => Reply {
            answer: rejection(&fields, parsed_type, ""),
            plan: Plan::Hold,
            processed: false,
        },
        Some(ForcedFault::Maintenance(code)) => Reply::now(rejection(&fields, parsed_type, code)),
        _ => match validate::check_message(map, &fields, config, today) {
            Err(code) => Reply::now(rejection(&fields, parsed_type, code)),
            Ok(MessageType::Inquiry) => inquiry(state, &fields),
            Ok(MessageType::Payment) => payment(state, config, &fields),
            Ok(MessageType::Purchase) => purchase(state, config, &fields),
            Ok(MessageType::Advice) => advice(state, &fields),
            Ok(MessageType::BalanceInquiry) => balance_inquiry(state, config, &fields),
        },
    };
    match (fault, reply.plan) {
        (Some(ForcedFault::Delay(extra)), Plan::Answer) => reply.plan = Plan::After(*extra),
        (Some(ForcedFault::Delay(extra)), Plan::After(late)) => {
            reply.plan = Plan::After(late + *extra)
        }
        (Some(ForcedFault::Garbage(garbled)), Plan::Answer | Plan::After(_))
            if parsed_type == Some(*garbled) =>
        {
            reply.plan = Plan::NotJson
        }
        _ => {}
    }
    state.received.push(ReceivedMessage {
        message_type: fields.message_type.clone(),
        trx_id: fields.trx_id.clone(),
        product: fields.product.clone(),
        bill_number: fields.bill_number.clone(),
        payment_code: fields.payment_code.clone(),
        result_code: if reply.processed {
            reply.answer.result_code.clone()
        } else {
            String::new()
        },
        delivery: reply.plan.delivery(),
    });
    reply
}

/// An answer that echoes the request and carries `code` with its text and nothing else.
fn rejection(fields: &Fields, message_type: Option<MessageType>, code: &str) -> Answer {
    Answer {
        message_type: fields.message_type.clone(),
        service: message_type
            .map(MessageType::response_service)
            .unwrap_or_default()
            .to_string(),
        account_type: fields.account_type.clone(),
        account: fields.account.clone(),
        // The vendor's balance-inquiry answer has no institutionCode.
        institution_code: (message_type != Some(MessageType::BalanceInquiry))
            .then(|| fields.institution_code.clone()),
        product: fields.product.clone(),
        bill_number: fields.bill_number.clone(),
        result_code: code.to_string(),
        result_desc: result_desc(code, message_type),
        nominal: "0".into(),
        admin: "0".into(),
        trx_id: fields.trx_id.clone(),
        retrieval: fields.retrieval.clone(),
        payment_code: fields.payment_code.clone().unwrap_or_default(),
        info1: String::new(),
        info2: String::new(),
        info3: String::new(),
        jml_lembar: "0".into(),
        saldo: String::new(),
        signature: fields.sign.clone(),
    }
}

/// A successful answer for `bill`.
fn billed(
    fields: &Fields,
    message_type: MessageType,
    bill: &Bill,
    payment_code: &str,
    saldo: String,
) -> Answer {
    Answer {
        result_desc: result_desc("000", Some(message_type)),
        nominal: bill.nominal.to_string(),
        admin: bill.admin.to_string(),
        payment_code: payment_code.to_string(),
        info1: bill.info1.clone(),
        info2: bill.info2.clone(),
        info3: bill.info3.clone(),
        jml_lembar: bill.sheets.to_string(),
        saldo,
        ..rejection(fields, Some(message_type), "000")
    }
}

/// Product checks for the first message of a flow: unknown, or sold the other way → `104`;
/// inactive → `995`.
fn sellable(
    fields: &Fields,
    message_type: MessageType,
    kind: ProductKind,
) -> Result<&'static Product, Answer> {
    match catalog::product(&fields.product) {
        Some(product) if product.kind == kind && product.active => Ok(product),
        Some(product) if product.kind == kind => Err(rejection(fields, Some(message_type), "995")),
        _ => Err(rejection(fields, Some(message_type), "104")),
    }
}

fn inquiry(state: &mut State, fields: &Fields) -> Reply {
    let kind = MessageType::Inquiry;
    let product = match sellable(fields, kind, ProductKind::Postpaid) {
        Ok(product) => product,
        Err(answer) => return Reply::now(answer),
    };
    let magic = Magic::of(&fields.bill_number);
    let bill = match magic {
        Magic::FirstMessage(code) => return Reply::now(rejection(fields, Some(kind), &code)),
        ref m if m.is_test_bill() => catalog::test_bill(product, &fields.bill_number),
        _ => match catalog::postpaid_bill(&fields.product, &fields.bill_number) {
            Some(bill) => bill,
            None => {
                return Reply::now(rejection(fields, Some(kind), biller::BILL_NOT_FOUND));
            }
        },
    };
    let payment_code = state.new_payment_code();
    let answer = billed(fields, kind, &bill, &payment_code, String::new());
    state.codes.insert(
        payment_code,
        IssuedCode {
            product: fields.product.clone(),
            bill_number: fields.bill_number.clone(),
            inquiry_trx_id: fields.trx_id.clone(),
            bill,
            paid: false,
        },
    );
    Reply::now(answer)
}

fn payment(state: &mut State, config: &SandboxConfig, fields: &Fields) -> Reply {
    let kind = MessageType::Payment;
    let payment_code = fields.payment_code.clone().unwrap_or_default();
    let issued = match state.codes.get(&payment_code) {
        Some(issued)
            if issued.product == fields.product && issued.bill_number == fields.bill_number =>
        {
            issued.clone()
        }
        _ => return Reply::now(rejection(fields, Some(kind), "996")),
    };
    if issued.paid {
        return Reply::now(rejection(fields, Some(kind), "995"));
    }
    let key = (fields.trx_id.clone(), payment_code.clone());
    let fault = match Magic::of(&fields.bill_number) {
        Magic::Payment(code) => {
            let answer = rejection(fields, Some(kind), &code);
            state.payments.insert(key, processed(&answer, None));
            return Reply::now(answer);
        }
        Magic::Transport(TransportFault::LostNotApplied) => {
            return Reply {
                answer: rejection(fields, Some(kind), ""),
                plan: Plan::Lost,
                processed: false,
            };
        }
        Magic::Transport(fault) => Some(fault),
        _ => None,
    };
    if state.balance < issued.bill.total() {
        let answer = rejection(fields, Some(kind), biller::INSUFFICIENT_BALANCE);
        state.payments.insert(key, processed(&answer, None));
        return transported(answer, fault, false, fields, config);
    }
    state.balance -= issued.bill.total();
    if let Some(code) = state.codes.get_mut(&payment_code) {
        code.paid = true;
    }
    let answer = Answer {
        // The vendor's payment answer carries the inquiry's trxId (PROTOCOL.md, "Errata").
        trx_id: issued.inquiry_trx_id.clone(),
        ..billed(
            fields,
            kind,
            &issued.bill,
            &payment_code,
            state.balance.to_string(),
        )
    };
    let advice_code = (fault == Some(TransportFault::LostUnresolvable)).then_some("102");
    state.payments.insert(key, processed(&answer, advice_code));
    transported(answer, fault, true, fields, config)
}

fn purchase(state: &mut State, config: &SandboxConfig, fields: &Fields) -> Reply {
    let kind = MessageType::Purchase;
    let product = match sellable(fields, kind, ProductKind::Prepaid) {
        Ok(product) => product,
        Err(answer) => return Reply::now(answer),
    };
    let digits = fields.bill_number.bytes().all(|b| b.is_ascii_digit());
    let magic = Magic::of(&fields.bill_number);
    let fault = match magic {
        _ if !digits => None,
        Magic::FirstMessage(code) | Magic::Payment(code) => {
            return Reply::now(rejection(fields, Some(kind), &code));
        }
        Magic::Transport(TransportFault::LostNotApplied) => {
            return Reply {
                answer: rejection(fields, Some(kind), ""),
                plan: Plan::Lost,
                processed: false,
            };
        }
        Magic::Transport(fault) => Some(fault),
        _ => None,
    };
    let accepted = digits
        && (magic != Magic::None || catalog::accepts_customer(product.code, &fields.bill_number));
    if !accepted {
        return Reply::now(rejection(
            fields,
            Some(kind),
            biller::INVALID_CUSTOMER_NUMBER,
        ));
    }
    let reference = state.new_reference();
    let token = electricity_token(&reference, &fields.bill_number);
    let bill = catalog::prepaid_sale(product, &fields.bill_number, &reference, &token);
    if state.balance < bill.total() {
        // Nothing was sold, so there is no paymentCode to ask advice about.
        let answer = rejection(fields, Some(kind), biller::INSUFFICIENT_BALANCE);
        return transported(answer, fault, false, fields, config);
    }
    state.balance -= bill.total();
    let payment_code = state.new_payment_code();
    let answer = billed(
        fields,
        kind,
        &bill,
        &payment_code,
        state.balance.to_string(),
    );
    let advice_code = (fault == Some(TransportFault::LostUnresolvable)).then_some("102");
    state.payments.insert(
        (fields.trx_id.clone(), payment_code.clone()),
        processed(&answer, advice_code),
    );
    state.codes.insert(
        payment_code,
        IssuedCode {
            product: fields.product.clone(),
            bill_number: fields.bill_number.clone(),
            inquiry_trx_id: fields.trx_id.clone(),
            bill,
            paid: true,
        },
    );
    transported(answer, fault, true, fields, config)
}

/// Advice answers the stored outcome of the payment or purchase with this very `trxId` and
/// `paymentCode`, and never applies anything; otherwise `996`.
fn advice(state: &State, fields: &Fields) -> Reply {
    let kind = MessageType::Advice;
    let key = (
        fields.trx_id.clone(),
        fields.payment_code.clone().unwrap_or_default(),
    );
    let Some(payment) = state.payments.get(&key) else {
        return Reply::now(rejection(fields, Some(kind), "996"));
    };
    if let Some(code) = payment.advice_code {
        return Reply::now(rejection(fields, Some(kind), code));
    }
    Reply::now(Answer {
        message_type: fields.message_type.clone(),
        service: kind.response_service().to_string(),
        retrieval: fields.retrieval.clone(),
        signature: fields.sign.clone(),
        ..payment.outcome.clone()
    })
}

fn balance_inquiry(state: &State, config: &SandboxConfig, fields: &Fields) -> Reply {
    let kind = MessageType::BalanceInquiry;
    if fields.product != BALANCE_PRODUCT {
        return Reply::now(rejection(fields, Some(kind), "104"));
    }
    if fields.bill_number != config.account {
        return Reply::now(rejection(fields, Some(kind), "997"));
    }
    let balance = state.balance.to_string();
    let name = "SANDBOX MITRA";
    Reply::now(Answer {
        result_desc: result_desc("00", Some(kind)),
        info1: format!("Customer Name : {name}|Product Code : WADIAH|Balance : {balance}|"),
        info2: format!("0100{}", &config.account[6..]),
        info3: format!("{name}|WADIAH|{balance}|"),
        saldo: balance,
        ..rejection(fields, Some(kind), "00")
    })
}

fn processed(answer: &Answer, advice_code: Option<&'static str>) -> ProcessedPayment {
    ProcessedPayment {
        outcome: answer.clone(),
        advice_code,
    }
}

/// How a payment's or purchase's answer travels, given its `97ddd` fault.
fn transported(
    answer: Answer,
    fault: Option<TransportFault>,
    applied: bool,
    fields: &Fields,
    config: &SandboxConfig,
) -> Reply {
    let plan = match fault {
        None | Some(TransportFault::AnsweredAlreadyPaid) => Plan::Answer,
        Some(
            TransportFault::LostApplied
            | TransportFault::LostNotApplied
            | TransportFault::LostUnresolvable,
        ) => Plan::Lost,
        Some(TransportFault::Late) => Plan::After(config.late_delay),
        Some(TransportFault::ServerError) => Plan::ServerError,
        Some(TransportFault::NotJson) => Plan::NotJson,
    };
    let answer = if fault == Some(TransportFault::AnsweredAlreadyPaid) && applied {
        // The payment-side 995 ("already paid, do a status check"), also on a purchase.
        let kind = MessageType::parse(&fields.message_type);
        Answer {
            result_desc: result_desc("995", Some(MessageType::Payment)),
            ..rejection(fields, kind, "995")
        }
    } else {
        answer
    };
    Reply {
        answer,
        plan,
        processed: true,
    }
}

/// A 20-digit electricity token, derived from the receipt reference and the meter number.
fn electricity_token(reference: &str, meter: &str) -> String {
    let digest = Md5::digest(format!("{reference}{meter}").as_bytes());
    digest
        .iter()
        .take(10)
        .map(|b| format!("{:02}", b % 100))
        .collect()
}
