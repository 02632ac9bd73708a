//! The test kit of mpospay-gateway: what the gateway's tests and its load harness (`loadgen`)
//! set up, written once (STYLE.md, habit 7).
//!
//! - [`GatewayCommand`] / [`GatewayProcess`]: the gateway binary as a child process, configured
//!   through its environment as an operator runs it; wait until `/readyz` answers, SIGKILL,
//!   restart on the same port and database.
//! - [`free_port`]: a free loopback port.
//! - [`Backend`], [`TestDatabase`] and [`both_backends!`]: one test body run on SQLite and on
//!   Postgres, each time on a fresh database.
//! - [`postgres`]: fresh Postgres databases on the shared server (`TEST_DATABASE_URL`), and
//!   [`PrivatePostgres`], a cluster of the test's own that it may crash.
//! - [`test_ca`]: a throwaway certificate authority for the TLS tests.
//!
//! The kit speaks to the gateway only through its binary, its environment and its HTTP API, so
//! it does not depend on the gateway's library: a test passes
//! `env!("CARGO_BIN_EXE_mpospay-gateway")` and the simulator's partner account.

mod backend;
mod gateway;
pub mod postgres;
mod private_postgres;
pub mod test_ca;

pub use backend::{Backend, TestDatabase};
pub use gateway::{GatewayCommand, GatewayLog, GatewayProcess, Partner};
pub use private_postgres::PrivatePostgres;

/// A free TCP port on loopback (bound, read, released: free until someone else takes it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}
