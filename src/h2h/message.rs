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
    if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
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
