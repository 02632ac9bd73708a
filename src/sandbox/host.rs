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
    /// The connection drops before any byte of an answer.
    Lost,
    /// HTTP 200 and the first half of the JSON body, then the connection drops.
    Truncated,
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
            Plan::Truncated => Delivery::Truncated,
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
/// inactive → `995`. `Err` holds the result code.
fn sellable(fields: &Fields, kind: ProductKind) -> Result<&'static Product, &'static str> {
    match catalog::product(&fields.product) {
        Some(product) if product.kind == kind && product.active => Ok(product),
        Some(product) if product.kind == kind => Err("995"),
        _ => Err("104"),
    }
}

fn inquiry(state: &mut State, fields: &Fields) -> Reply {
    let kind = MessageType::Inquiry;
    let product = match sellable(fields, ProductKind::Postpaid) {
        Ok(product) => product,
        Err(code) => return Reply::now(rejection(fields, Some(kind), code)),
    };
    if let Some((code, text)) = catalog::formula_decline(&fields.product, &fields.bill_number) {
        return Reply::now(Answer {
            result_desc: text.to_string(),
            ..rejection(fields, Some(kind), code)
        });
    }
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
    let product = match sellable(fields, ProductKind::Prepaid) {
        Ok(product) => product,
        Err(code) => return Reply::now(rejection(fields, Some(kind), code)),
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
        Some(TransportFault::Truncated) => Plan::Truncated,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2h::SigningFields;

    const PASSWORD: &str = "aad16aabac2b3d4e17f04a95e2a2372f";
    const KEY: &str = "f1ntechSBU@2018#";

    fn vendor_date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2018, 3, 22).unwrap()
    }

    struct Host {
        state: State,
        config: SandboxConfig,
        fault: Option<ForcedFault>,
    }

    impl Host {
        fn new() -> Self {
            let config = SandboxConfig::default();
            Self {
                state: State::new(config.seed, config.initial_balance),
                config,
                fault: None,
            }
        }

        /// Sends a message signed for the vendor's example date.
        fn send(
            &mut self,
            message_type: &str,
            product: &str,
            bill_number: &str,
            trx_id: &str,
            payment_code: Option<&str>,
        ) -> Reply {
            let sign = SigningFields {
                message_type,
                account: "0000000018",
                institution_code: "180309000002",
                product,
                bill_number,
                trx_id,
            }
            .sign(PASSWORD, vendor_date(), KEY);
            let mut map = Map::new();
            for (key, value) in [
                ("type", message_type),
                ("accountType", "B2B"),
                ("account", "0000000018"),
                ("institutionCode", "180309000002"),
                ("product", product),
                ("billNumber", bill_number),
                ("trxId", trx_id),
                ("retrieval", "20180125003025879"),
                ("sign", &sign),
            ] {
                map.insert(key.into(), value.into());
            }
            if let Some(code) = payment_code {
                map.insert("paymentCode".into(), code.into());
            }
            process(
                &mut self.state,
                &self.config,
                self.fault.as_ref(),
                &map,
                vendor_date(),
            )
        }

        fn inquire(&mut self, product: &str, bill: &str, trx_id: &str) -> String {
            let reply = self.send("inquiry", product, bill, trx_id, None);
            assert_eq!(reply.answer.result_code, "000");
            reply.answer.payment_code
        }
    }

    fn parse(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_vendor_flow_answers_like_the_vendor_examples() {
        let mut host = Host::new();
        let inquiry = host.send("inquiry", "2042", "AF085713323054", "00000001", None);
        let vendor = parse(
            r#"{"type":"inquiry","service":"responseInquiry","accountType":"B2B","account":"0000000018","institutionCode":"180309000002","product":"2042","billNumber":"AF085713323054","resultCode":"000","resultDesc":"SUKSES","nominal":"304000","admin":"1550","trxId":"00000001","retrieval":"20180125003025879","paymentCode":"21b555433f8de4b86144642d29d56839","info1":"Kode Bayar  : AF085713323054|Kode Reff   : 900017|ID Transaksi: TKP154821699|Nama        : Eduard Budiharto|Desk.Order  : Pembelian dari Tokopedia|Jml Tagihan : Rp.     304.000|","info2":"TAGIHAN TOKOPEDIA|##1","info3":"","jmlLembar":"1","saldo":"","signature":"b3847e3a099979c1d96e3d186e0e05fa"}"#,
        );
        let mut ours = parse(&inquiry.answer.to_json());
        let code = ours.insert("paymentCode".into(), vendor["paymentCode"].clone());
        assert_eq!(ours, vendor);
        let code = code.unwrap().as_str().unwrap().to_string();

        let payment = host.send("payment", "2042", "AF085713323054", "00000002", Some(&code));
        let paid = parse(&payment.answer.to_json());
        assert_eq!(paid["resultCode"], "000");
        assert_eq!(paid["service"], "responsePayment");
        // The inquiry's trxId, as in the vendor's example.
        assert_eq!(paid["trxId"], "00000001");
        assert_eq!(paid["saldo"], (50_000_000 - 305_550).to_string());
        assert_eq!(paid["signature"], "1a3a62586844e13ca9bb64d0056d7d7c");
        assert_eq!(host.state.balance, 50_000_000 - 305_550);

        let advice = host.send("advice", "2042", "AF085713323054", "00000002", Some(&code));
        let advised = parse(&advice.answer.to_json());
        assert_eq!(advised["type"], "advice");
        assert_eq!(advised["signature"], "e88ab993f7a9ce1a9e2b78e15a485ccf");
        for key in ["resultCode", "nominal", "admin", "info1", "saldo", "trxId"] {
            assert_eq!(advised[key], paid[key], "{key}");
        }
        assert_eq!(
            host.state.balance,
            50_000_000 - 305_550,
            "advice applies nothing"
        );

        let again = host.send("payment", "2042", "AF085713323054", "00000003", Some(&code));
        assert_eq!(again.answer.result_code, "995");
        let other_trx = host.send("advice", "2042", "AF085713323054", "00000003", Some(&code));
        assert_eq!(other_trx.answer.result_code, "996");

        let balance = host.send("balanceInquiry", "CBS", "0000000018", "00000006", None);
        let balance = parse(&balance.answer.to_json());
        assert_eq!(balance["resultCode"], "00");
        assert_eq!(balance["resultDesc"], "success");
        assert_eq!(balance["saldo"], "49694450");
        assert_eq!(
            balance["info1"],
            "Customer Name : SANDBOX MITRA|Product Code : WADIAH|Balance : 49694450|"
        );
        assert!(balance.get("institutionCode").is_none());
        assert_eq!(balance["signature"], "2855d3b6a6eda783ab5a91b115b59186");

        let types: Vec<_> = host
            .state
            .received
            .iter()
            .map(|m| (m.message_type.as_str(), m.result_code.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("inquiry", "000"),
                ("payment", "000"),
                ("advice", "000"),
                ("payment", "995"),
                ("advice", "996"),
                ("balanceInquiry", "00")
            ]
        );
    }

    #[test]
    fn the_vendor_purchase_sells_phone_credit() {
        let mut host = Host::new();
        let reply = host.send("purchase", "3100", "08132259999", "00000004", None);
        let answer = parse(&reply.answer.to_json());
        assert_eq!(answer["resultCode"], "000");
        assert_eq!(answer["service"], "responsePayment");
        assert_eq!(
            (answer["nominal"].as_str(), answer["admin"].as_str()),
            (Some("10050"), Some("0"))
        );
        assert_eq!(answer["trxId"], "00000004");
        assert_eq!(answer["signature"], "85afd2485c7f91177d006c51ff771f8c");
        assert_eq!(answer["paymentCode"].as_str().unwrap().len(), 32);
        assert!(answer["info1"]
            .as_str()
            .unwrap()
            .starts_with("NO. HANDPHONE : 08132259999|NILAI VOUCHER : 10000|NO.REF        : "));
        assert_eq!(host.state.balance, 50_000_000 - 10_050);
        let code = answer["paymentCode"].as_str().unwrap();
        let advice = host.send("advice", "3100", "08132259999", "00000004", Some(code));
        assert_eq!(advice.answer.result_code, "000");
        assert_eq!(host.state.balance, 50_000_000 - 10_050);
    }

    #[test]
    fn products_and_bills_that_do_not_sell() {
        let mut host = Host::new();
        let code = |host: &mut Host, t: &str, p: &str, b: &str| {
            host.send(t, p, b, "00000010", None).answer.result_code
        };
        assert_eq!(code(&mut host, "inquiry", "7777", "AF085713323054"), "104");
        assert_eq!(code(&mut host, "inquiry", "3100", "08132259999"), "104");
        assert_eq!(code(&mut host, "inquiry", "2099", "12345"), "995");
        assert_eq!(code(&mut host, "inquiry", "2042", "AF000000000000"), "014");
        assert_eq!(code(&mut host, "purchase", "2042", "08132259999"), "104");
        assert_eq!(code(&mut host, "purchase", "3199", "08132259999"), "995");
        assert_eq!(code(&mut host, "purchase", "3100", "0813"), "015");
        assert_eq!(
            code(&mut host, "balanceInquiry", "2042", "0000000018"),
            "104"
        );
        assert_eq!(
            code(&mut host, "balanceInquiry", "CBS", "0000000019"),
            "997"
        );
        assert_eq!(host.state.balance, 50_000_000);
        assert!(host.state.codes.is_empty());
    }

    #[test]
    fn magic_numbers_answer_their_codes() {
        let mut host = Host::new();
        let first = host.send("inquiry", "1001", "99992000001", "00000001", None);
        assert_eq!(first.answer.result_code, "992");
        assert_eq!(
            first.answer.result_desc,
            "Account anda terblokir. Mohon hubungi adminstrator"
        );
        let purchase = host.send("purchase", "3100", "99102", "00000002", None);
        assert_eq!(purchase.answer.result_code, "102");
        let declined = host.send("purchase", "3100", "98051", "00000003", None);
        assert_eq!(declined.answer.result_code, "051");
        assert_eq!(host.state.balance, 50_000_000);

        let code = host.inquire("1201", "98063000001", "00000004");
        let payment = host.send("payment", "1201", "98063000001", "00000005", Some(&code));
        assert_eq!(payment.answer.result_code, "063");
        assert_eq!(payment.answer.result_desc, "Transaksi ditolak biller");
        assert_eq!(host.state.balance, 50_000_000);
        let advice = host.send("advice", "1201", "98063000001", "00000005", Some(&code));
        assert_eq!(advice.answer.result_code, "063");
    }

    #[test]
    fn transport_faults_apply_or_not_as_documented() {
        let mut host = Host::new();
        let cost = 152_500;
        let mut expected = 50_000_000;
        for (suffix, plan, applied, advice_code) in [
            ("001", Plan::Lost, true, "000"),
            ("002", Plan::After(host.config.late_delay), true, "000"),
            ("003", Plan::ServerError, true, "000"),
            ("004", Plan::NotJson, true, "000"),
            ("005", Plan::Lost, false, "996"),
            ("006", Plan::Lost, true, "102"),
            ("007", Plan::Answer, true, "000"),
        ] {
            let bill = format!("97{suffix}42");
            let code = host.inquire("1301", &bill, "00000001");
            let payment = host.send("payment", "1301", &bill, "00000002", Some(&code));
            assert_eq!(payment.plan, plan, "{bill}");
            if applied {
                expected -= cost;
            }
            assert_eq!(host.state.balance, expected, "{bill}");
            if suffix == "007" {
                assert_eq!(payment.answer.result_code, "995");
            }
            let advice = host.send("advice", "1301", &bill, "00000002", Some(&code));
            assert_eq!(advice.answer.result_code, advice_code, "{bill}");
            assert_eq!(advice.plan, Plan::Answer);
            assert_eq!(
                host.state.balance, expected,
                "{bill}: advice applies nothing"
            );
        }
        let logged = host
            .state
            .received
            .iter()
            .find(|m| m.bill_number == "9700542" && m.message_type == "payment")
            .unwrap();
        assert_eq!(
            (logged.result_code.as_str(), logged.delivery),
            ("", Delivery::Lost)
        );
    }

    #[test]
    fn an_empty_deposit_declines_with_051() {
        let mut host = Host::new();
        host.state.balance = 300_000;
        let code = host.inquire("2042", "AF085713323054", "00000001");
        let payment = host.send("payment", "2042", "AF085713323054", "00000002", Some(&code));
        assert_eq!(payment.answer.result_code, "051");
        assert_eq!(payment.answer.result_desc, "Saldo deposit tidak mencukupi");
        assert_eq!(host.state.balance, 300_000);
        // Not applied: the same paymentCode pays once the deposit is topped up.
        host.state.balance = 1_000_000;
        let payment = host.send("payment", "2042", "AF085713323054", "00000003", Some(&code));
        assert_eq!(payment.answer.result_code, "000");
    }

    #[test]
    fn a_payment_must_name_the_inquired_bill() {
        let mut host = Host::new();
        let code = host.inquire("2042", "AF085713323054", "00000001");
        let wrong_bill = host.send("payment", "2042", "AF085713323055", "00000002", Some(&code));
        assert_eq!(wrong_bill.answer.result_code, "996");
        assert_eq!(
            wrong_bill.answer.result_desc,
            "paymentCode tidak ditemukan (reqPayment)"
        );
        let unknown = host.send(
            "payment",
            "2042",
            "AF085713323054",
            "00000003",
            Some(&"0".repeat(32)),
        );
        assert_eq!(unknown.answer.result_code, "996");
        assert_eq!(host.state.balance, 50_000_000);
    }

    #[test]
    fn forced_faults_shape_every_answer() {
        let mut host = Host::new();
        host.fault = Some(ForcedFault::Maintenance("998".into()));
        let reply = host.send("inquiry", "2042", "AF085713323054", "00000001", None);
        assert_eq!(reply.answer.result_code, "998");
        assert_eq!(
            reply.answer.result_desc,
            "Mohon maaf, service B2B sedang maintenance"
        );

        host.fault = Some(ForcedFault::Garbage(MessageType::Payment));
        let code = host.inquire("2042", "AF085713323054", "00000002");
        let reply = host.send("payment", "2042", "AF085713323054", "00000003", Some(&code));
        assert_eq!(reply.plan, Plan::NotJson);
        assert_eq!(
            host.state.balance,
            50_000_000 - 305_550,
            "garbage answers still apply"
        );

        host.fault = Some(ForcedFault::Delay(Duration::from_millis(300)));
        let reply = host.send("balanceInquiry", "CBS", "0000000018", "00000004", None);
        assert_eq!(reply.plan, Plan::After(Duration::from_millis(300)));

        host.fault = Some(ForcedFault::Blackhole);
        let reply = host.send("inquiry", "2042", "AF085713323054", "00000005", None);
        assert_eq!(reply.plan, Plan::Hold);
        assert_eq!(host.state.codes.len(), 1, "held messages are not processed");
        let last = host.state.received.last().unwrap();
        assert_eq!(
            (last.result_code.as_str(), last.delivery),
            ("", Delivery::Held)
        );
    }
}
