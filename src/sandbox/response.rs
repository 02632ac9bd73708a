//! The answer body, written with the vendor examples' field order and all values as strings.

/// Every field of an answer. Serialized by [`Answer::to_json`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    pub message_type: String,
    pub service: String,
    pub account_type: String,
    pub account: String,
    /// `None` leaves the field out, as the vendor's balance-inquiry example does.
    pub institution_code: Option<String>,
    pub product: String,
    pub bill_number: String,
    pub result_code: String,
    pub result_desc: String,
    pub nominal: String,
    pub admin: String,
    pub trx_id: String,
    pub retrieval: String,
    pub payment_code: String,
    pub info1: String,
    pub info2: String,
    pub info3: String,
    pub jml_lembar: String,
    pub saldo: String,
    pub signature: String,
}

impl Answer {
    /// The JSON object, keys in the order of the vendor's examples.
    pub fn to_json(&self) -> String {
        let mut fields: Vec<(&str, &str)> = vec![
            ("type", &self.message_type),
            ("service", &self.service),
            ("accountType", &self.account_type),
            ("account", &self.account),
        ];
        if let Some(code) = &self.institution_code {
            fields.push(("institutionCode", code));
        }
        fields.extend([
            ("product", self.product.as_str()),
            ("billNumber", &self.bill_number),
            ("resultCode", &self.result_code),
            ("resultDesc", &self.result_desc),
            ("nominal", &self.nominal),
            ("admin", &self.admin),
            ("trxId", &self.trx_id),
            ("retrieval", &self.retrieval),
            ("paymentCode", &self.payment_code),
            ("info1", &self.info1),
            ("info2", &self.info2),
            ("info3", &self.info3),
            ("jmlLembar", &self.jml_lembar),
            ("saldo", &self.saldo),
            ("signature", &self.signature),
        ]);
        let mut out = String::from("{");
        for (i, (key, value)) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::Value::from(key).to_string());
            out.push(':');
            out.push_str(&serde_json::Value::from(value).to_string());
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_vendor_order_and_values_are_strings() {
        let answer = Answer {
            message_type: "balanceInquiry".into(),
            result_code: "00".into(),
            info1: "a \"quoted\"|".into(),
            ..Answer::default()
        };
        let json = answer.to_json();
        assert!(json.starts_with(
            r#"{"type":"balanceInquiry","service":"","accountType":"","account":"","product":"#
        ));
        assert!(!json.contains("institutionCode"));
        let parsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&json).unwrap();
        assert!(parsed.values().all(|v| v.is_string()));
        assert_eq!(parsed["info1"], "a \"quoted\"|");
        assert_eq!(parsed.len(), 19);
    }
}
