//! Typed H2H request and response messages. On the wire every value is a JSON string.

use serde::{Deserialize, Deserializer, Serialize};

/// The five message types of the B2B API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MessageType {
    Inquiry,
    Payment,
    Purchase,
    Advice,
    BalanceInquiry,
}

impl MessageType {
    /// The value of the `type` field, which also starts the signature string.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Inquiry => "inquiry",
            MessageType::Payment => "payment",
            MessageType::Purchase => "purchase",
            MessageType::Advice => "advice",
            MessageType::BalanceInquiry => "balanceInquiry",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            MessageType::Inquiry,
            MessageType::Payment,
            MessageType::Purchase,
            MessageType::Advice,
            MessageType::BalanceInquiry,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// The `service` name the upstream answers with (payment, purchase and advice share one).
    pub fn response_service(self) -> &'static str {
        match self {
            MessageType::Inquiry => "responseInquiry",
            MessageType::Payment | MessageType::Purchase | MessageType::Advice => "responsePayment",
            MessageType::BalanceInquiry => "responseBalanceInquiry",
        }
    }

    /// Whether the message carries a `paymentCode` (payment and advice only).
    pub fn carries_payment_code(self) -> bool {
        matches!(self, MessageType::Payment | MessageType::Advice)
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request as sent on the wire, fields in the vendor's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    #[serde(rename = "type")]
    pub message_type: MessageType,
    pub account_type: String,
    pub account: String,
    pub institution_code: String,
    pub product: String,
    pub bill_number: String,
    pub trx_id: String,
    pub retrieval: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payment_code: Option<String>,
    pub sign: String,
}

impl Request {
    /// The message as stored for the record: everything but the signature.
    pub fn without_signature(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("a request always serializes");
        if let Some(map) = value.as_object_mut() {
            map.remove("sign");
        }
        value
    }
}

/// A response as the upstream sends it. Unknown fields are ignored and missing ones are empty:
/// only `resultCode` is required for a response to count as an answer (see the client).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Response {
    #[serde(rename = "type", deserialize_with = "lenient")]
    pub message_type: String,
    #[serde(deserialize_with = "lenient")]
    pub service: String,
    #[serde(deserialize_with = "lenient")]
    pub account_type: String,
    #[serde(deserialize_with = "lenient")]
    pub account: String,
    #[serde(deserialize_with = "lenient")]
    pub institution_code: String,
    #[serde(deserialize_with = "lenient")]
    pub product: String,
    #[serde(deserialize_with = "lenient")]
    pub bill_number: String,
    #[serde(deserialize_with = "lenient")]
    pub result_code: String,
    #[serde(deserialize_with = "lenient")]
    pub result_desc: String,
    #[serde(deserialize_with = "lenient")]
    pub nominal: String,
    #[serde(deserialize_with = "lenient")]
    pub admin: String,
    #[serde(deserialize_with = "lenient")]
    pub trx_id: String,
    #[serde(deserialize_with = "lenient")]
    pub retrieval: String,
    #[serde(deserialize_with = "lenient")]
    pub payment_code: String,
    #[serde(deserialize_with = "lenient")]
    pub info1: String,
    #[serde(deserialize_with = "lenient")]
    pub info2: String,
    #[serde(deserialize_with = "lenient")]
    pub info3: String,
    #[serde(deserialize_with = "lenient")]
    pub jml_lembar: String,
    #[serde(deserialize_with = "lenient")]
    pub saldo: String,
    #[serde(deserialize_with = "lenient")]
    pub signature: String,
}

impl Response {
    /// `nominal` as rupiah, if it holds digits.
    pub fn nominal_amount(&self) -> Option<i64> {
        parse_amount(&self.nominal)
    }

    /// `admin` as rupiah, if it holds digits.
    pub fn admin_fee(&self) -> Option<i64> {
        parse_amount(&self.admin)
    }

    /// `saldo` (deposit left after the transaction), if it holds digits.
    pub fn balance(&self) -> Option<i64> {
        parse_amount(&self.saldo)
    }

    /// `jmlLembar`, the number of receipt sheets.
    pub fn sheets(&self) -> Option<i32> {
        self.jml_lembar.trim().parse().ok()
    }
}

/// Amount fields are digit strings; anything else (empty, signs, spaces inside) is no amount.
pub fn parse_amount(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || s.len() > MAX_NOMINAL_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// PROTOCOL.md's size of `nominal` and `saldo`: at most 12 digits.
pub const MAX_NOMINAL_DIGITS: usize = 12;
/// PROTOCOL.md's size of `admin`: at most 8 digits.
pub const MAX_ADMIN_DIGITS: usize = 8;
/// How much of `info1`–`info3` and `resultDesc` is kept (API.md, "Upstream result → HTTP"): the
/// protocol says 1,000; a verbose biller gets leeway, and no answer can bloat a page.
pub const MAX_TEXT_CHARS: usize = 4000;

impl Response {
    /// The number fields that break PROTOCOL.md's sizes (a value that is not all digits, or has
    /// too many): such an answer is not a valid answer. Empty is fine (a field that does not
    /// apply).
    pub fn oversized_numbers(&self) -> Vec<&'static str> {
        [
            ("nominal", &self.nominal, MAX_NOMINAL_DIGITS),
            ("admin", &self.admin, MAX_ADMIN_DIGITS),
            ("saldo", &self.saldo, MAX_NOMINAL_DIGITS),
        ]
        .into_iter()
        .filter(|(_, value, digits)| {
            let value = value.trim();
            !value.is_empty()
                && (value.len() > *digits || !value.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(name, _, _)| name)
        .collect()
    }

    /// Cuts `info1`–`info3` and `resultDesc` to their first [`MAX_TEXT_CHARS`] characters;
    /// returns the fields cut, with their length in characters before the cut.
    pub fn bound_texts(&mut self) -> Vec<(&'static str, usize)> {
        let mut cut = Vec::new();
        for (name, text) in [
            ("resultDesc", &mut self.result_desc),
            ("info1", &mut self.info1),
            ("info2", &mut self.info2),
            ("info3", &mut self.info3),
        ] {
            if let Some((end, _)) = text.char_indices().nth(MAX_TEXT_CHARS) {
                cut.push((name, text.chars().count()));
                text.truncate(end);
            }
        }
        cut
    }
}

/// An answer body as it is stored for the record. The upstream echoes our `sign` back as
/// `signature` (PROTOCOL.md, "Signature"): a JSON object loses that field and has its long texts
/// cut as [`Response::bound_texts`] cuts them; any other body (HTML, a cut-off answer) keeps its
/// text with every copy of `sign` redacted.
pub fn answer_for_record(raw: &str, sign: &str) -> String {
    let redact = |text: &str| {
        if sign.is_empty() {
            text.to_string()
        } else {
            text.replace(sign, "[redacted]")
        }
    };
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.remove("signature");
            for field in ["resultDesc", "info1", "info2", "info3"] {
                if let Some(serde_json::Value::String(text)) = map.get_mut(field) {
                    if let Some((end, _)) = text.char_indices().nth(MAX_TEXT_CHARS) {
                        text.truncate(end);
                    }
                }
            }
            redact(&serde_json::Value::Object(map).to_string())
        }
        _ => redact(raw),
    }
}

/// Accepts a string, a number or null where the vendor promises a string.
fn lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_inquiry_response_parses_with_its_quirks() {
        let raw = r#"{"type":"inquiry","service":"responseInquiry","accountType":"B2B","account":"0000000018","institutionCode":"180309000002","product":"2042", "billNumber":"AF085713323054","resultCode":"000","resultDesc":"SUKSES","nominal":"304000","admin":"1550","trxId":"00000001","retrieval":"20180125003025879","paymentCode":"21b555433f8de4b86144642d29d56839","info1":"Kode Bayar  : AF085713323054|Nama        : Eduard Budiharto|","info2":"TAGIHAN TOKOPEDIA|\n##1","info3":"","jmlLembar":"1","saldo":"","signature":"b3847e3a099979c1d96e3d186e0e05fa", "extra": {"x": 1}}"#;
        let response: Response = serde_json::from_str(raw).unwrap();
        assert_eq!(response.result_code, "000");
        assert_eq!(response.nominal_amount(), Some(304000));
        assert_eq!(response.admin_fee(), Some(1550));
        assert_eq!(response.balance(), None);
        assert_eq!(response.sheets(), Some(1));
        assert_eq!(response.signature, "b3847e3a099979c1d96e3d186e0e05fa");
    }

    #[test]
    fn missing_fields_and_numbers_are_tolerated() {
        let response: Response =
            serde_json::from_str(r#"{"resultCode": 0, "saldo": 2451000, "info1": null}"#).unwrap();
        assert_eq!(response.result_code, "0");
        assert_eq!(response.balance(), Some(2451000));
        assert_eq!(response.info1, "");
    }

    #[test]
    fn numbers_past_the_protocol_sizes_are_named() {
        let sized = |nominal: &str, admin: &str, saldo: &str| {
            Response {
                nominal: nominal.into(),
                admin: admin.into(),
                saldo: saldo.into(),
                ..Response::default()
            }
            .oversized_numbers()
        };
        assert!(sized("999999999999", "99999999", "").is_empty());
        assert_eq!(sized("1000000000000", "", ""), ["nominal"]);
        assert_eq!(sized("", "123456789", "1234567890123"), ["admin", "saldo"]);
        assert_eq!(sized("-5", "", ""), ["nominal"]);
        assert_eq!(parse_amount("999999999999999"), None);
    }

    #[test]
    fn long_texts_are_cut_to_4000_characters() {
        let mut response = Response {
            info1: "é".repeat(5000),
            info2: "x".repeat(4000),
            result_desc: "SUKSES".into(),
            ..Response::default()
        };
        assert_eq!(response.bound_texts(), [("info1", 5000)]);
        assert_eq!(response.info1.chars().count(), 4000);
        assert_eq!(response.info2.len(), 4000);
    }

    #[test]
    fn the_echoed_signature_is_not_kept_for_the_record() {
        let sign = "b3847e3a099979c1d96e3d186e0e05fa";
        let stored = answer_for_record(
            &format!(
                r#"{{"resultCode":"000","info1":"{}","signature":"{sign}"}}"#,
                "y".repeat(9000)
            ),
            sign,
        );
        let value: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert!(value.get("signature").is_none());
        assert_eq!(value["resultCode"], "000");
        assert_eq!(value["info1"].as_str().unwrap().len(), 4000);
        let cut = answer_for_record(
            &format!(r#"{{"resultCode":"000","signature":"{sign}"#),
            sign,
        );
        assert!(!cut.contains(sign), "{cut}");
    }

    #[test]
    fn request_serializes_in_vendor_order_without_payment_code_when_absent() {
        let request = Request {
            message_type: MessageType::BalanceInquiry,
            account_type: "B2B".into(),
            account: "0000000018".into(),
            institution_code: "180309000002".into(),
            product: "CBS".into(),
            bill_number: "0000000018".into(),
            trx_id: "00000006".into(),
            retrieval: "20180125003025879".into(),
            payment_code: None,
            sign: "2855d3b6a6eda783ab5a91b115b59186".into(),
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            r#"{"type":"balanceInquiry","accountType":"B2B","account":"0000000018","institutionCode":"180309000002","product":"CBS","billNumber":"0000000018","trxId":"00000006","retrieval":"20180125003025879","sign":"2855d3b6a6eda783ab5a91b115b59186"}"#
        );
        assert!(request.without_signature().get("sign").is_none());
    }
}
