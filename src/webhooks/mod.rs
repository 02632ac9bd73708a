//! Events and webhooks (API.md, "Notifications: the event feed and webhooks"): the event model,
//! endpoint secrets and their encryption at rest, Standard Webhooks signatures, the
//! HTTPS-capable sender, the retry schedule, one delivery attempt turned into the delivery's
//! next state, and the worker that runs the attempts.
//!
//! Flow: a transaction reaches a state → an [`Event`] is stored with it → one delivery per
//! matching endpoint → a worker claims due deliveries and calls [`attempt_delivery`] → the store
//! records the returned [`DeliveryUpdate`] ([`DeliveryWorker`], the one part that uses the
//! store; the statements are in `store::events`).

mod delivery;
mod encryption;
mod endpoint;
mod event;
mod rotation;
mod schedule;
mod secret;
mod sender;
mod signature;
mod tls;
mod worker;

pub use delivery::{attempt_delivery, next_state, ClaimedDelivery, DeliveryStatus, DeliveryUpdate};
pub use encryption::{
    ensure_key_file, load_encryption_key, DecryptError, EncryptionKey, KeyFileError, StoredSecret,
    WebhooksUnavailable, KEY_FILE_NAME,
};
pub use endpoint::{EndpointUrl, EventFilter, InvalidEndpointUrl, MAX_URL_LEN};
pub use event::{Event, EventData, EventId, EventType, UnknownEventType};
pub use rotation::{live_secrets, open_live_secrets, Rotation};
pub use schedule::{NextAttempt, RetrySchedule, DEFAULT_RETRY_SCHEDULE_SECS};
pub use secret::{EndpointSecret, InvalidSecret, SECRET_PREFIX};
pub use sender::{AttemptOutcome, WebhookSender, MAX_RECEIVER_BODY_BYTES};
pub use signature::{sign, SignedHeaders, SigningError};
pub use tls::{client_config, TlsConfigError};
pub use worker::{DeliveryWorker, POLL_INTERVAL};
