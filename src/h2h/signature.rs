//! The message signature: `MD5(type+account+institutionCode+product+billNumber+trxId+password+date+key)`
//! with the date taken in the upstream's time zone (PROTOCOL.md, "Signature").

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};

use super::message::{MessageType, Request};
use super::ACCOUNT_TYPE;

/// The message fields that enter the signature, as they are sent.
#[derive(Debug, Clone, Copy)]
pub struct SigningFields<'a> {
    pub message_type: &'a str,
    pub account: &'a str,
    pub institution_code: &'a str,
    pub product: &'a str,
    pub bill_number: &'a str,
    pub trx_id: &'a str,
}

impl SigningFields<'_> {
    /// The string whose MD5 is the signature. It holds the secrets: never log it.
    pub fn string_to_sign(&self, password: &str, date: NaiveDate, key: &str) -> String {
        format!(
            "{}{}{}{}{}{}{}{}{}",
            self.message_type,
            self.account,
            self.institution_code,
            self.product,
            self.bill_number,
            self.trx_id,
            password,
            date.format("%Y-%m-%d"),
            key
        )
    }

    /// Lower-case hex MD5 of [`Self::string_to_sign`].
    pub fn sign(&self, password: &str, date: NaiveDate, key: &str) -> String {
        hex::encode(Md5::digest(
            self.string_to_sign(password, date, key).as_bytes(),
        ))
    }
}

/// The calendar date in the upstream's zone: the signature date and the business day.
pub fn business_date(now: DateTime<Utc>, zone: Tz) -> NaiveDate {
    now.with_timezone(&zone).date_naive()
}

/// `retrieval`: the local transaction time as `yyyyMMddHHmmssSSS`.
pub fn format_retrieval(now: DateTime<Utc>, zone: Tz) -> String {
    now.with_timezone(&zone)
        .format("%Y%m%d%H%M%S%3f")
        .to_string()
}

/// What a partner is issued, plus the zone its signature date is taken in.
#[derive(Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: SecretString,
    pub password: SecretString,
    pub key: SecretString,
    /// 10 digits.
    pub account: String,
    /// 12 digits.
    pub institution_code: String,
    pub zone: Tz,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("password", &"[REDACTED]")
            .field("key", &"[REDACTED]")
            .field("account", &self.account)
            .field("institution_code", &self.institution_code)
            .field("zone", &self.zone)
            .finish()
    }
}

/// The parts of a message that vary; the rest comes from [`Credentials`].
#[derive(Debug, Clone)]
pub struct Draft {
    pub message_type: MessageType,
    pub product: String,
    pub bill_number: String,
    pub trx_id: String,
    pub payment_code: Option<String>,
}

impl Credentials {
    /// Signs `fields` with this partner's secrets for the business date of `now`.
    pub fn sign(&self, fields: &SigningFields<'_>, now: DateTime<Utc>) -> String {
        fields.sign(
            self.password.expose_secret(),
            business_date(now, self.zone),
            self.key.expose_secret(),
        )
    }

    /// A complete, signed request for `draft` at time `now`.
    pub fn build_request(&self, draft: Draft, now: DateTime<Utc>) -> Request {
        let sign = self.sign(
            &SigningFields {
                message_type: draft.message_type.as_str(),
                account: &self.account,
                institution_code: &self.institution_code,
                product: &draft.product,
                bill_number: &draft.bill_number,
                trx_id: &draft.trx_id,
            },
            now,
        );
        Request {
            message_type: draft.message_type,
            account_type: ACCOUNT_TYPE.to_string(),
            account: self.account.clone(),
            institution_code: self.institution_code.clone(),
            product: draft.product,
            bill_number: draft.bill_number,
            trx_id: draft.trx_id,
            retrieval: format_retrieval(now, self.zone),
            payment_code: draft.payment_code,
            sign,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const PASSWORD: &str = "aad16aabac2b3d4e17f04a95e2a2372f";
    const KEY: &str = "f1ntechSBU@2018#";

    fn vendor_fields<'a>(
        message_type: &'a str,
        product: &'a str,
        bill_number: &'a str,
        trx_id: &'a str,
    ) -> SigningFields<'a> {
        SigningFields {
            message_type,
            account: "0000000018",
            institution_code: "180309000002",
            product,
            bill_number,
            trx_id,
        }
    }

    fn vendor_date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2018, 3, 22).unwrap()
    }

    #[test]
    fn the_five_vendor_vectors_reproduce_exactly() {
        let vectors = [
            (
                "inquiry",
                "2042",
                "AF085713323054",
                "00000001",
                "b3847e3a099979c1d96e3d186e0e05fa",
            ),
            (
                "payment",
                "2042",
                "AF085713323054",
                "00000002",
                "1a3a62586844e13ca9bb64d0056d7d7c",
            ),
            (
                "purchase",
                "3100",
                "08132259999",
                "00000004",
                "85afd2485c7f91177d006c51ff771f8c",
            ),
            (
                "advice",
                "2042",
                "AF085713323054",
                "00000002",
                "e88ab993f7a9ce1a9e2b78e15a485ccf",
            ),
            (
                "balanceInquiry",
                "CBS",
                "0000000018",
                "00000006",
                "2855d3b6a6eda783ab5a91b115b59186",
            ),
        ];
        for (message_type, product, bill, trx_id, expected) in vectors {
            let fields = vendor_fields(message_type, product, bill, trx_id);
            assert_eq!(
                fields.sign(PASSWORD, vendor_date(), KEY),
                expected,
                "{message_type}"
            );
        }
    }

    #[test]
    fn the_erratum_value_is_the_variant_without_trx_id() {
        let erratum = "8a4cb6945f10e622c3d9a232b1a6d3e7";
        let without_trx_id = vendor_fields("inquiry", "2042", "AF085713323054", "");
        assert_eq!(without_trx_id.sign(PASSWORD, vendor_date(), KEY), erratum);
        let with_trx_id = vendor_fields("inquiry", "2042", "AF085713323054", "00000001");
        assert_ne!(with_trx_id.sign(PASSWORD, vendor_date(), KEY), erratum);
    }

    #[test]
    fn the_date_switches_at_midnight_jakarta_not_utc() {
        let jakarta: Tz = "Asia/Jakarta".parse().unwrap();
        // 16:59:59 UTC on the 21st is 23:59:59 WIB on the 21st; a second later it is the 22nd
        // in Jakarta while UTC still says the 21st.
        let before = Utc.with_ymd_and_hms(2018, 3, 21, 16, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2018, 3, 21, 17, 0, 0).unwrap();
        assert_eq!(
            business_date(before, jakarta),
            NaiveDate::from_ymd_opt(2018, 3, 21).unwrap()
        );
        assert_eq!(business_date(after, jakarta), vendor_date());
        assert_eq!(
            after.date_naive(),
            NaiveDate::from_ymd_opt(2018, 3, 21).unwrap()
        );

        let credentials = Credentials {
            client_id: "id".into(),
            client_secret: "secret".into(),
            password: PASSWORD.into(),
            key: KEY.into(),
            account: "0000000018".into(),
            institution_code: "180309000002".into(),
            zone: jakarta,
        };
        let fields = vendor_fields("inquiry", "2042", "AF085713323054", "00000001");
        assert_eq!(
            credentials.sign(&fields, after),
            "b3847e3a099979c1d96e3d186e0e05fa"
        );
        assert_ne!(
            credentials.sign(&fields, before),
            "b3847e3a099979c1d96e3d186e0e05fa"
        );

        // Makassar (UTC+8) turns the day an hour earlier.
        let makassar = Credentials {
            zone: "Asia/Makassar".parse().unwrap(),
            ..credentials
        };
        let makassar_midnight = Utc.with_ymd_and_hms(2018, 3, 21, 16, 0, 0).unwrap();
        assert_eq!(
            makassar.sign(&fields, makassar_midnight),
            "b3847e3a099979c1d96e3d186e0e05fa"
        );
    }

    #[test]
    fn retrieval_is_local_time_with_milliseconds() {
        let jakarta: Tz = "Asia/Jakarta".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 7, 30, 25).unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(format_retrieval(now, jakarta), "20261127143025123");
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let credentials = Credentials {
            client_id: "partner".into(),
            client_secret: "s3cr3t-basic".into(),
            password: PASSWORD.into(),
            key: KEY.into(),
            account: "0000000018".into(),
            institution_code: "180309000002".into(),
            zone: chrono_tz::Asia::Jakarta,
        };
        let shown = format!("{credentials:?}");
        for secret in ["s3cr3t-basic", PASSWORD, KEY] {
            assert!(!shown.contains(secret));
        }
    }
}
