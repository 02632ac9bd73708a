//! Newtypes for the fields that cross the edge, each parsed once.

use std::fmt;

/// A value that failed validation, naming the field (API.md: `"field": "<name>"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// Customer number, phone number or billing code: 1–1500 of letters, digits, `-`, `.`, `_`.
    BillNumber
);
string_newtype!(
    /// A product code: 1–5 letters or digits (`2042`, `CBS`).
    ProductCode
);
string_newtype!(
    /// A prepaid customer number (a phone number): 1–20 digits.
    CustomerNumber
);
string_newtype!(
    /// The partner's 10-digit account.
    Account
);
string_newtype!(
    /// The partner's 12-digit institution code.
    InstitutionCode
);
string_newtype!(
    /// A client's Idempotency-Key: 1–255 visible ASCII characters.
    IdempotencyKey
);

impl BillNumber {
    pub const MAX_LEN: usize = 1500;

    pub fn parse(field: &'static str, s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(ValidationError::new(
                field,
                "must be at most 1500 characters",
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Err(ValidationError::new(
                field,
                "may hold only letters, digits, '-', '.' and '_'",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl ProductCode {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ValidationError::new(
                field,
                "must be 1 to 5 letters or digits",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl CustomerNumber {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::new(field, "must be 1 to 20 digits"));
        }
        Ok(Self(s.to_string()))
    }

    /// A customer number is sent upstream as the bill number.
    pub fn into_bill_number(self) -> BillNumber {
        BillNumber(self.0)
    }
}

fn exact_digits(field: &'static str, s: &str, len: usize) -> Result<String, ValidationError> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::new(
            field,
            format!("must be exactly {len} digits"),
        ));
    }
    Ok(s.to_string())
}

impl Account {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ValidationError> {
        exact_digits(field, s, 10).map(Self)
    }
}

impl InstitutionCode {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ValidationError> {
        exact_digits(field, s, 12).map(Self)
    }
}

impl IdempotencyKey {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ValidationError::new(
                field,
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

/// The running 8-digit transaction number: 00000001 ..= 99999999, then 00000001 again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrxId(u32);

impl TrxId {
    pub const MAX: u32 = 99_999_999;

    pub fn new(value: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&value).then_some(Self(value))
    }

    pub fn parse(field: &'static str, s: &str) -> Result<Self, ValidationError> {
        let digits = exact_digits(field, s, 8)?;
        digits
            .parse()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| ValidationError::new(field, "must not be 00000000"))
    }

    pub fn value(self) -> u32 {
        self.0
    }

    /// The number after this one, wrapping from 99999999 to 00000001.
    pub fn next(self) -> Self {
        if self.0 >= Self::MAX {
            Self(1)
        } else {
            Self(self.0 + 1)
        }
    }
}

impl fmt::Display for TrxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bill_numbers_accept_the_documented_alphabet_only() {
        assert!(BillNumber::parse("billNumber", "AF085713323054").is_ok());
        assert!(BillNumber::parse("billNumber", "a-b.c_d").is_ok());
        assert!(BillNumber::parse("billNumber", &"9".repeat(1500)).is_ok());
        for bad in ["", "../etc", "a b", "a/b", "ä", "x'--", &"9".repeat(1501)] {
            let error = BillNumber::parse("billNumber", bad).unwrap_err();
            assert_eq!(error.field, "billNumber");
        }
    }

    #[test]
    fn products_customer_numbers_and_keys_have_their_limits() {
        assert!(ProductCode::parse("product", "2042").is_ok());
        assert!(ProductCode::parse("product", "CBS").is_ok());
        assert!(ProductCode::parse("product", "123456").is_err());
        assert!(ProductCode::parse("product", "20-2").is_err());
        assert!(CustomerNumber::parse("customerNumber", "08132259999").is_ok());
        assert!(CustomerNumber::parse("customerNumber", "0813225999a").is_err());
        assert!(CustomerNumber::parse("customerNumber", &"1".repeat(21)).is_err());
        assert!(IdempotencyKey::parse("Idempotency-Key", "order-42/1").is_ok());
        assert!(IdempotencyKey::parse("Idempotency-Key", "has space").is_err());
        assert!(IdempotencyKey::parse("Idempotency-Key", &"k".repeat(256)).is_err());
        assert!(Account::parse("account", "00000000181").is_err());
        assert!(InstitutionCode::parse("institutionCode", "180309000002").is_ok());
    }

    #[test]
    fn trx_ids_are_eight_digits_and_wrap_to_one() {
        assert_eq!(TrxId::new(2).unwrap().to_string(), "00000002");
        assert_eq!(
            TrxId::new(99_999_999).unwrap().next().to_string(),
            "00000001"
        );
        assert!(TrxId::new(0).is_none());
        assert!(TrxId::new(100_000_000).is_none());
        assert_eq!(TrxId::parse("trxId", "00000042").unwrap().value(), 42);
        assert!(TrxId::parse("trxId", "0000042").is_err());
        assert!(TrxId::parse("trxId", "00000000").is_err());
    }
}
