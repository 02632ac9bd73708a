//! The upstream simulator: a strict, deterministic stand-in for the MPospay B2B H2H host that
//! partners develop against offline and that every test and benchmark of the gateway uses.
//!
//! It speaks the protocol of `shared/upstream/PROTOCOL.md` exactly (headers, signature with
//! the date in its own zone, field checks, the vendor's answer shape), serves a small catalog of
//! bills (the vendor's example among them), keeps a deposit balance, and reaches every result
//! code and transport fault through magic bill numbers or a run-time [`ForcedFault`].
//! `docs/sandbox.md` is the user's guide.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mpospay_gateway::sandbox::{spawn_on_loopback, SandboxConfig};
//! let sandbox = spawn_on_loopback(SandboxConfig::default()).await?;
//! let base_url = sandbox.base_url(); // http://127.0.0.1:PORT
//! // … point an UpstreamClient at base_url with SandboxConfig::default().credentials() …
//! sandbox.stop().await;
//! # Ok(()) }
//! ```

mod catalog;
mod config;
mod faults;
mod host;
mod response;
mod server;
mod state;
mod validate;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::ServerHandle;
use chrono::Utc;
use serde_json::{Map, Value};
use tokio::sync::watch;

pub use catalog::{Product, ProductKind, FORMULA_DECLINES, FORMULA_NAMES, PRODUCTS};
pub use config::{SandboxConfig, DEFAULT_DEPOSIT};
pub use faults::{biller, result_desc, ForcedFault};
pub use server::DEPOSIT_PATH;
pub use state::{Delivery, ReceivedMessage};

use crate::h2h::{business_date, MessageType, H2H_PATH};
use host::Reply;
use state::State;

/// A deposit movement that would leave the balance negative (or overflow it): nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a movement of {amount} would take the deposit of {balance} below zero")]
pub struct DepositRefused {
    /// The balance, unchanged.
    pub balance: i64,
    pub amount: i64,
}

/// Where `mpospay-gateway sandbox` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

/// One simulator instance: its settings and the host's memory. Cheap to clone (shared).
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

struct Shared {
    config: SandboxConfig,
    state: Mutex<State>,
    fault: Mutex<Option<ForcedFault>>,
    /// Flipped to true when the instance stops: releases held and late answers.
    shutdown: watch::Sender<bool>,
}

/// A poisoned lock only means a panic elsewhere; the data is still the simulator's best view.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        let state = State::new(config.seed, config.initial_balance);
        let fault = config.forced_fault.clone();
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(state),
                fault: Mutex::new(fault),
                shutdown: watch::channel(false).0,
            }),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Every message that passed authentication and JSON parsing, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        lock(&self.shared.state).received.clone()
    }

    /// How many received messages had this `type`.
    pub fn count(&self, message_type: MessageType) -> usize {
        lock(&self.shared.state)
            .received
            .iter()
            .filter(|m| m.message_type == message_type.as_str())
            .count()
    }

    /// The deposit balance now.
    pub fn balance(&self) -> i64 {
        lock(&self.shared.state).balance
    }

    /// Moves money into (`amount > 0`, a top-up) or out of (`amount < 0`, a charge the gateway
    /// knows nothing of) the deposit, as happens at the real host outside the H2H path. Returns
    /// the new balance; a charge beyond the balance is refused and changes nothing.
    pub fn adjust_deposit(&self, amount: i64) -> Result<i64, DepositRefused> {
        let mut state = lock(&self.shared.state);
        let balance = state
            .balance
            .checked_add(amount)
            .filter(|balance| *balance >= 0)
            .ok_or(DepositRefused {
                balance: state.balance,
                amount,
            })?;
        state.balance = balance;
        Ok(balance)
    }

    pub fn forced_fault(&self) -> Option<ForcedFault> {
        lock(&self.shared.fault).clone()
    }

    /// Applies `fault` to every message from now on (`None` clears it).
    pub fn set_forced_fault(&self, fault: Option<ForcedFault>) {
        *lock(&self.shared.fault) = fault;
    }

    /// Serves this instance on an already-bound listener, in the background.
    pub async fn spawn(self, listener: TcpListener) -> std::io::Result<SandboxHandle> {
        let addr = listener.local_addr()?;
        let server = server::build(self.clone(), listener, false)?;
        let server_handle = server.handle();
        let task = tokio::spawn(server);
        Ok(SandboxHandle {
            sandbox: self,
            addr,
            server: server_handle,
            task: Some(task),
        })
    }

    /// Handles one authenticated, parsed message with the sandbox's own clock.
    fn process(&self, map: &Map<String, Value>) -> Reply {
        let fault = self.forced_fault();
        let today = business_date(Utc::now(), self.shared.config.zone);
        let mut state = lock(&self.shared.state);
        host::process(&mut state, &self.shared.config, fault.as_ref(), map, today)
    }

    fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shared.shutdown.subscribe()
    }
}

/// A running instance. Dropping it stops the server too (without waiting).
pub struct SandboxHandle {
    sandbox: Sandbox,
    addr: SocketAddr,
    server: ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, without a path: the `base_url` of an `UpstreamClient`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Every message that passed authentication and JSON parsing, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.sandbox.received()
    }

    /// How many received messages had this `type`.
    pub fn count(&self, message_type: MessageType) -> usize {
        self.sandbox.count(message_type)
    }

    /// The deposit balance now.
    pub fn balance(&self) -> i64 {
        self.sandbox.balance()
    }

    /// Applies `fault` to every message from now on (`None` clears it).
    pub fn set_forced_fault(&self, fault: Option<ForcedFault>) {
        self.sandbox.set_forced_fault(fault);
    }

    /// A top-up (`amount > 0`) or an outside charge (`amount < 0`); see [`Sandbox::adjust_deposit`].
    pub fn adjust_deposit(&self, amount: i64) -> Result<i64, DepositRefused> {
        self.sandbox.adjust_deposit(amount)
    }

    /// Stops the server: held and late answers are dropped, then it waits for the workers.
    pub async fn stop(mut self) {
        self.sandbox.shared.shutdown.send_replace(true);
        self.server.stop(true).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.sandbox.shared.shutdown.send_replace(true);
            // The stop command is sent at once; the returned future only waits for completion.
            drop(self.server.stop(false));
        }
    }
}

/// Starts a sandbox on an already-bound listener, in the background.
pub async fn spawn(config: SandboxConfig, listener: TcpListener) -> std::io::Result<SandboxHandle> {
    Sandbox::new(config).spawn(listener).await
}

/// Starts a sandbox on `127.0.0.1:0` (a free port), in the background.
pub async fn spawn_on_loopback(config: SandboxConfig) -> std::io::Result<SandboxHandle> {
    spawn(config, TcpListener::bind("127.0.0.1:0")?).await
}

/// Serves a sandbox on `listen` until Ctrl-C or SIGTERM (`mpospay-gateway sandbox`).
pub async fn run(config: SandboxConfig, listen: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let banner = format!(
        "MPospay sandbox listening on http://{addr}{H2H_PATH} (client_id {}, account {}, institution {}, zone {}, seed {}, deposit {}; control: http://{addr}{DEPOSIT_PATH})",
        config.client_id, config.account, config.institution_code, config.zone, config.seed, config.initial_balance
    );
    let sandbox = Sandbox::new(config);
    let server = server::build(sandbox, listener, true)?;
    tracing::info!(%addr, path = H2H_PATH, "sandbox listening");
    println!("{banner}");
    server.await
}
