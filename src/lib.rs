//! mpospay-gateway: a safe REST gateway in front of the MPospay B2B H2H API.
//!
//! Data flow: request → validated [`domain`] value → [`store`] → signed [`h2h`] message →
//! stored result → response ([`http`]). [`sandbox`] is a faithful upstream simulator.

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod h2h;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod payments;
pub mod sandbox;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod ui;
pub mod webhooks;
