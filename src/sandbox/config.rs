//! What one simulator instance is: the partner it serves, its clock's zone, its seed and deposit.

use std::time::Duration;

use chrono_tz::Tz;

use super::faults::ForcedFault;
use crate::config::UpstreamSettings;
use crate::h2h::Credentials;

/// The demo partner's deposit at start, in rupiah.
pub const DEFAULT_DEPOSIT: i64 = 50_000_000;

/// The settings of one simulator instance. [`Default`] gives the documented demo partner.
#[derive(Clone)]
pub struct SandboxConfig {
    /// HTTP Basic user.
    pub client_id: String,
    /// HTTP Basic password.
    pub client_secret: String,
    /// The API password that enters the signature.
    pub password: String,
    /// The API key that enters the signature.
    pub key: String,
    /// The partner's account: 10 digits.
    pub account: String,
    /// The partner's institution code: 12 digits.
    pub institution_code: String,
    /// The zone whose calendar date the signature must use.
    pub zone: Tz,
    /// Seeds the `paymentCode` generator: same seed, same codes in the same order.
    pub seed: u64,
    /// The deposit balance at start, in rupiah.
    pub initial_balance: i64,
    /// How late the `97002…` payments are answered.
    pub late_delay: Duration,
    /// A fault applied to every message from the start (see [`ForcedFault`]).
    pub forced_fault: Option<ForcedFault>,
}

impl SandboxConfig {
    /// The partner credentials that this instance accepts.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone().into(),
            password: self.password.clone().into(),
            key: self.key.clone().into(),
            account: self.account.clone(),
            institution_code: self.institution_code.clone(),
            zone: self.zone,
        }
    }

    /// The gateway's upstream settings for this instance at `base_url` (what `serve --sandbox`
    /// and the tests use): its partner's credentials, plain HTTP, a 5 s timeout, 16 connections.
    pub fn upstream_settings(&self, base_url: String) -> UpstreamSettings {
        UpstreamSettings {
            url: base_url,
            origin: "localhost".into(),
            credentials: self.credentials(),
            timeout: Duration::from_secs(5),
            max_connections: 16,
            tls: Default::default(),
            breaker: Default::default(),
        }
    }
}

impl Default for SandboxConfig {
    /// The demo partner: the vendor document's password, key, account and institution code.
    fn default() -> Self {
        Self {
            client_id: "sandbox-client".into(),
            client_secret: "sandbox-secret".into(),
            password: "aad16aabac2b3d4e17f04a95e2a2372f".into(),
            key: "f1ntechSBU@2018#".into(),
            account: "0000000018".into(),
            institution_code: "180309000002".into(),
            zone: chrono_tz::Asia::Jakarta,
            seed: 42,
            initial_balance: DEFAULT_DEPOSIT,
            late_delay: Duration::from_secs(10),
            forced_fault: None,
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("password", &"[REDACTED]")
            .field("key", &"[REDACTED]")
            .field("account", &self.account)
            .field("institution_code", &self.institution_code)
            .field("zone", &self.zone)
            .field("seed", &self.seed)
            .field("initial_balance", &self.initial_balance)
            .field("late_delay", &self.late_delay)
            .field("forced_fault", &self.forced_fault)
            .finish()
    }
}
