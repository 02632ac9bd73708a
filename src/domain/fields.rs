//! Newtypes for the fields that cross the edge, each parsed once.
//!
//! The ones a client sends also describe themselves to the OpenAPI document: their schema's
//! `pattern` is [`Documented::PATTERN`], the rule their `parse` applies, and they deserialize
//! through `parse`, so a request body that holds one is validated as it is read.

use std::borrow::Cow;
use std::fmt;

use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};

/// A value that failed validation, naming the field (API.md: `"field": "<name>"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The field, header or path parameter as the client names it (`inquiryId`).
    pub field: Cow<'static, str>,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A string newtype a client sends, as the OpenAPI document describes it.
pub trait Documented {
    /// The name the API usually gives the value (`product`). Inside a request body the error
    /// names the field by its path instead.
    const FIELD: &'static str;
    /// The regular expression `parse` accepts exactly (anchored).
    const PATTERN: &'static str;
    const MIN_LENGTH: usize;
    const MAX_LENGTH: usize;
    /// What the document shows as an example.
    const EXAMPLE: &'static str;
    /// One line for the document.
    const DESCRIPTION: &'static str;
}

/// `Deserialize` through `parse` and a `ToSchema` from [`Documented`], for a string newtype.
macro_rules! documented {
    ($name:ident) => {
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                // A string that breaks the rule is well-formed but not acceptable: a custom
                // error (the body reader answers it 422), where a wrong JSON type is 400.
                Self::parse(<Self as Documented>::FIELD, &raw)
                    .map_err(|error| serde::de::Error::custom(error.message))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string_schema::<Self>()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

fn string_schema<T: Documented>() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(T::DESCRIPTION))
        .min_length(Some(T::MIN_LENGTH))
        .max_length(Some(T::MAX_LENGTH))
        .pattern(Some(T::PATTERN))
        .examples([T::EXAMPLE])
        .into()
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
string_newtype!(
    /// The name of a client of the gateway, which its API keys share: 1–100 printable
    /// characters, trimmed.
    ClientName
);

impl Documented for BillNumber {
    const FIELD: &'static str = "billNumber";
    const PATTERN: &'static str = "^[A-Za-z0-9._-]{1,1500}$";
    const MIN_LENGTH: usize = 1;
    const MAX_LENGTH: usize = Self::MAX_LEN;
    const EXAMPLE: &'static str = "AF085713323054";
    const DESCRIPTION: &'static str =
        "A customer number, phone number or billing code: 1–1500 letters, digits, `-`, `.`, `_`.";
}
documented!(BillNumber);

impl Documented for ProductCode {
    const FIELD: &'static str = "product";
    const PATTERN: &'static str = "^[A-Za-z0-9]{1,5}$";
    const MIN_LENGTH: usize = 1;
    const MAX_LENGTH: usize = 5;
    const EXAMPLE: &'static str = "2042";
    const DESCRIPTION: &'static str = "A product code: 1–5 letters or digits.";
}
documented!(ProductCode);

impl Documented for CustomerNumber {
    const FIELD: &'static str = "customerNumber";
    const PATTERN: &'static str = "^[0-9]{1,20}$";
    const MIN_LENGTH: usize = 1;
    const MAX_LENGTH: usize = 20;
    const EXAMPLE: &'static str = "08132259999";
    const DESCRIPTION: &'static str =
        "A prepaid customer number (a phone or meter number): 1–20 digits.";
}
documented!(CustomerNumber);

impl Documented for IdempotencyKey {
    const FIELD: &'static str = "Idempotency-Key";
    const PATTERN: &'static str = "^[!-~]{1,255}$";
    const MIN_LENGTH: usize = 1;
    const MAX_LENGTH: usize = 255;
    const EXAMPLE: &'static str = "order-42/1";
    const DESCRIPTION: &'static str = "1–255 visible ASCII characters.";
}
documented!(IdempotencyKey);

impl Documented for ClientName {
    const FIELD: &'static str = "name";
    /// Printable characters (no control characters) with at least one that is not a space:
    /// what is left after trimming is 1–100 printable characters.
    const PATTERN: &'static str =
        "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";
    const MIN_LENGTH: usize = 1;
    const MAX_LENGTH: usize = Self::MAX_CHARS;
    const EXAMPLE: &'static str = "pos-web";
    const DESCRIPTION: &'static str = "The client the key belongs to (several keys may share it: \
        rotation). 1–100 printable characters (no control characters), not only spaces; \
        leading and trailing spaces are trimmed.";
}
documented!(ClientName);

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

impl ClientName {
    pub const MAX_CHARS: usize = 100;

    /// Leading and trailing white space is dropped; the rest must be 1–100 characters, none a
    /// control character.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ValidationError> {
        let name = s.trim();
        if name.is_empty()
            || name.chars().count() > Self::MAX_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ValidationError::new(
                field,
                "must be 1 to 100 printable characters",
            ));
        }
        Ok(Self(name.to_string()))
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

    /// Accepted by `parse` exactly when the published schema allows it: the pattern (as JSON
    /// Schema reads it, unanchored search of an anchored expression) and the length bounds in
    /// characters.
    fn agree<T: Documented>(parse: impl Fn(&str) -> bool, samples: &[&str]) {
        let pattern = regex::Regex::new(T::PATTERN).expect("the pattern compiles");
        for sample in samples {
            let length = sample.chars().count();
            let allowed =
                pattern.is_match(sample) && (T::MIN_LENGTH..=T::MAX_LENGTH).contains(&length);
            assert_eq!(allowed, parse(sample), "{} on {sample:?}", T::PATTERN);
        }
    }

    #[test]
    fn each_published_pattern_accepts_exactly_what_the_parser_accepts() {
        let long_bill = "9".repeat(1500);
        let too_long_bill = "9".repeat(1501);
        agree::<BillNumber>(
            |s| BillNumber::parse("billNumber", s).is_ok(),
            &[
                "AF085713323054",
                "a-b.c_d",
                &long_bill,
                &too_long_bill,
                "",
                "a b",
                "a/b",
                "ä",
                "x'--",
                "AF0857\n",
                "１２",
            ],
        );
        agree::<ProductCode>(
            |s| ProductCode::parse("product", s).is_ok(),
            &[
                "2042",
                "CBS",
                "a",
                "12345",
                "123456",
                "",
                "20-2",
                "20 42",
                "２０４２",
                "2042\0",
            ],
        );
        agree::<CustomerNumber>(
            |s| CustomerNumber::parse("customerNumber", s).is_ok(),
            &[
                "08132259999",
                "1",
                &"1".repeat(20),
                &"1".repeat(21),
                "",
                "+6281",
                "-1",
                "0813225999a",
                "0813\n",
            ],
        );
        agree::<IdempotencyKey>(
            |s| IdempotencyKey::parse("Idempotency-Key", s).is_ok(),
            &[
                "order-42/1",
                "!",
                "~",
                &"k".repeat(255),
                &"k".repeat(256),
                "",
                "two words",
                "a\tb",
                "ä",
                "\u{7f}",
            ],
        );
        agree::<ClientName>(
            |s| ClientName::parse("name", s).is_ok(),
            &[
                "pos-web",
                "Toko Budi",
                " padded ",
                "ä",
                &"n".repeat(100),
                &"n".repeat(101),
                "",
                "   ",
                "a\u{0}b",
                "tab\there",
                "x\u{85}y",
                "x\u{9f}",
            ],
        );
    }

    #[test]
    fn client_names_are_trimmed_and_printable() {
        assert_eq!(
            ClientName::parse("name", "  pos-web ").unwrap().as_str(),
            "pos-web"
        );
        let error = ClientName::parse("name", "a\u{7}").unwrap_err();
        assert_eq!(error.field, "name");
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
