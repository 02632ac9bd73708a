//! What an endpoint is given at creation, parsed at the boundary (API.md, `POST
//! /v1/webhook-endpoints`): its URL, and which events it wants.

use awc::http::Uri;
use serde::{Deserialize, Serialize};

use super::event::EventType;

/// The longest URL an endpoint may have.
pub const MAX_URL_LEN: usize = 2048;

/// An `http://` or `https://` URL with a host and no user info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EndpointUrl(String);

/// Why a URL is refused (422, `field: url`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidEndpointUrl {
    #[error("must be at most {MAX_URL_LEN} characters")]
    TooLong,
    #[error("must be an http:// or https:// URL with a host")]
    NotHttp,
    #[error("must not contain user info (credentials belong in the signature, not the URL)")]
    UserInfo,
}

impl EndpointUrl {
    pub fn parse(text: &str) -> Result<Self, InvalidEndpointUrl> {
        if text.len() > MAX_URL_LEN {
            return Err(InvalidEndpointUrl::TooLong);
        }
        let uri: Uri = text.parse().map_err(|_| InvalidEndpointUrl::NotHttp)?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(InvalidEndpointUrl::NotHttp);
        }
        let authority = uri.authority().ok_or(InvalidEndpointUrl::NotHttp)?;
        if authority.as_str().contains('@') {
            return Err(InvalidEndpointUrl::UserInfo);
        }
        if authority.host().is_empty() {
            return Err(InvalidEndpointUrl::NotHttp);
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The event types an endpoint receives; empty means all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventFilter(Vec<EventType>);

impl EventFilter {
    /// Every type, now and later.
    pub fn all() -> Self {
        Self(Vec::new())
    }

    pub fn only(types: Vec<EventType>) -> Self {
        let mut unique = Vec::with_capacity(types.len());
        for kind in types {
            if !unique.contains(&kind) {
                unique.push(kind);
            }
        }
        Self(unique)
    }

    /// The types as listed, or every type for [`EventFilter::all`] (for the API's `events`).
    pub fn types(&self) -> Vec<EventType> {
        if self.0.is_empty() {
            EventType::ALL.to_vec()
        } else {
            self.0.clone()
        }
    }

    /// Whether an endpoint of `endpoint_client` with this filter gets an event of `kind` about
    /// `event_client`'s transaction (`None` for `deposit.*`). An endpoint without a client gets
    /// every client's transactions and `deposit.*`; one with a client only that client's
    /// transactions.
    pub fn wants(
        &self,
        endpoint_client: Option<&str>,
        kind: EventType,
        event_client: Option<&str>,
    ) -> bool {
        let type_wanted = self.0.is_empty() || self.0.contains(&kind);
        let client_wanted = match endpoint_client {
            None => true,
            Some(client) => kind.is_transaction() && event_client == Some(client),
        };
        type_wanted && client_wanted
    }

    /// As stored: a JSON array of type names, `[]` for all.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("a filter always serializes")
    }

    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_or_https_with_a_host_and_no_user_info() {
        for good in [
            "https://hooks.example/mpospay",
            "http://127.0.0.1:8080/hook?x=1",
        ] {
            assert_eq!(EndpointUrl::parse(good).unwrap().as_str(), good);
        }
        for (bad, problem) in [
            ("ftp://hooks.example/x", InvalidEndpointUrl::NotHttp),
            ("hooks.example/x", InvalidEndpointUrl::NotHttp),
            ("/relative", InvalidEndpointUrl::NotHttp),
            (
                "https://user:pw@hooks.example/",
                InvalidEndpointUrl::UserInfo,
            ),
            ("https://user@hooks.example/", InvalidEndpointUrl::UserInfo),
        ] {
            assert_eq!(EndpointUrl::parse(bad), Err(problem), "{bad}");
        }
        let long = format!("https://hooks.example/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(EndpointUrl::parse(&long), Err(InvalidEndpointUrl::TooLong));
    }

    #[test]
    fn an_endpoint_gets_its_types_and_its_clients_transactions() {
        use EventType::*;
        let all = EventFilter::all();
        assert!(all.wants(None, DepositLow, None));
        assert!(all.wants(None, TransactionFailed, Some("pos-web")));
        assert!(all.wants(Some("pos-web"), TransactionFailed, Some("pos-web")));
        assert!(!all.wants(Some("pos-web"), TransactionFailed, Some("kiosk")));
        assert!(!all.wants(Some("pos-web"), DepositLow, None));
        let succeeded = EventFilter::only(vec![TransactionSucceeded]);
        assert!(succeeded.wants(None, TransactionSucceeded, Some("kiosk")));
        assert!(!succeeded.wants(None, TransactionPending, Some("kiosk")));
        assert_eq!(succeeded.to_json(), r#"["transaction.succeeded"]"#);
        assert_eq!(EventFilter::from_json("[]").unwrap(), all);
        assert_eq!(all.types().len(), 5);
    }
}
