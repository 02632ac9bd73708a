//! The upstream's result codes. The same number can mean different things for inquiry and
//! payment (993–996), so meanings that depend on the message type live in `payments`.

/// A result code as the upstream sent it. Codes the vendor does not list (billers' own) are kept
/// with their exact text in [`ResultCode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// `000`, or `00` as balance inquiry answers.
    Success,
    /// `102`: system maintenance, retry in 3 minutes.
    Maintenance,
    /// `103` or `105`: past the cut-off time.
    CutOff(&'static str),
    /// `104`: invalid product code.
    InvalidProduct,
    /// `106`: mandatory field empty.
    MandatoryFieldEmpty,
    /// `107`: invalid trxId length.
    InvalidTrxIdLength,
    /// `108`: empty content from database.
    EmptyContent,
    /// `109`: database failure.
    DatabaseFailure,
    /// `198`: message processing failed.
    ProcessingFailed,
    /// `301`: empty (invalid) parameter.
    EmptyParameter,
    /// `991`: no reference price for this product.
    NoReferencePrice,
    /// `992`: account blocked.
    AccountBlocked,
    /// `993`: product has no routing host.
    NoRoutingHost,
    /// `994`: signature does not match.
    SignatureMismatch,
    /// `995`: product invalid or inactive (inquiry, purchase); paymentCode already paid (payment).
    Code995,
    /// `996`: institution code unknown (inquiry, purchase); paymentCode not found (payment, advice).
    Code996,
    /// `997`: invalid parameter.
    InvalidParameter,
    /// `998`: B2B service under maintenance.
    ServiceMaintenance,
    /// Any code the vendor does not list: a biller's own.
    Other(String),
}

impl ResultCode {
    pub fn parse(code: &str) -> Self {
        match code.trim() {
            "000" | "00" => ResultCode::Success,
            "102" => ResultCode::Maintenance,
            "103" => ResultCode::CutOff("103"),
            "105" => ResultCode::CutOff("105"),
            "104" => ResultCode::InvalidProduct,
            "106" => ResultCode::MandatoryFieldEmpty,
            "107" => ResultCode::InvalidTrxIdLength,
            "108" => ResultCode::EmptyContent,
            "109" => ResultCode::DatabaseFailure,
            "198" => ResultCode::ProcessingFailed,
            "301" => ResultCode::EmptyParameter,
            "991" => ResultCode::NoReferencePrice,
            "992" => ResultCode::AccountBlocked,
            "993" => ResultCode::NoRoutingHost,
            "994" => ResultCode::SignatureMismatch,
            "995" => ResultCode::Code995,
            "996" => ResultCode::Code996,
            "997" => ResultCode::InvalidParameter,
            "998" => ResultCode::ServiceMaintenance,
            other => ResultCode::Other(other.to_string()),
        }
    }

    /// The code as the vendor lists it (`000` for success).
    pub fn as_str(&self) -> &str {
        match self {
            ResultCode::Success => "000",
            ResultCode::Maintenance => "102",
            ResultCode::CutOff(code) => code,
            ResultCode::InvalidProduct => "104",
            ResultCode::MandatoryFieldEmpty => "106",
            ResultCode::InvalidTrxIdLength => "107",
            ResultCode::EmptyContent => "108",
            ResultCode::DatabaseFailure => "109",
            ResultCode::ProcessingFailed => "198",
            ResultCode::EmptyParameter => "301",
            ResultCode::NoReferencePrice => "991",
            ResultCode::AccountBlocked => "992",
            ResultCode::NoRoutingHost => "993",
            ResultCode::SignatureMismatch => "994",
            ResultCode::Code995 => "995",
            ResultCode::Code996 => "996",
            ResultCode::InvalidParameter => "997",
            ResultCode::ServiceMaintenance => "998",
            ResultCode::Other(code) => code,
        }
    }

    pub fn is_success(&self) -> bool {
        *self == ResultCode::Success
    }

    /// `102` and `998`: the upstream asks to come back later.
    pub fn is_maintenance(&self) -> bool {
        matches!(
            self,
            ResultCode::Maintenance | ResultCode::ServiceMaintenance
        )
    }

    /// `108`, `109`, `198`: the upstream failed while processing; on a payment the outcome is
    /// unknown, not a decline.
    pub fn is_processing_failure(&self) -> bool {
        matches!(
            self,
            ResultCode::EmptyContent | ResultCode::DatabaseFailure | ResultCode::ProcessingFailed
        )
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_success_spellings_are_success() {
        assert!(ResultCode::parse("000").is_success());
        assert!(ResultCode::parse("00").is_success());
        assert!(!ResultCode::parse("0000").is_success());
    }

    #[test]
    fn every_listed_code_round_trips_and_unknown_codes_are_kept() {
        for code in [
            "102", "103", "104", "105", "106", "107", "108", "109", "198", "301", "991", "992",
            "993", "994", "995", "996", "997", "998",
        ] {
            let parsed = ResultCode::parse(code);
            assert!(!matches!(parsed, ResultCode::Other(_)), "{code} is listed");
            assert_eq!(parsed.as_str(), code);
        }
        assert_eq!(ResultCode::parse("Q42"), ResultCode::Other("Q42".into()));
        assert_eq!(ResultCode::parse("Q42").as_str(), "Q42");
    }
}
