//! Black-box tests of the REST gateway: every test runs against SQLite and Postgres, with the
//! built-in simulator as the upstream, and counts what the simulator actually received.

mod helpers;
mod hostile;

mod abuse;
mod auth;
mod errors;
mod faults_process;
mod faults_storage;
mod faults_upstream;
mod finance;
mod flow;
mod idempotency;
mod logs;
mod metrics;
mod openapi;
mod reconciliation;
mod recovery;
mod trx_ids;
mod validation;
mod webhooks;

mod breaker;
mod duplicates;
mod receipts;
mod upstream_answers;
