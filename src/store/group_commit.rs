//! Group commit: concurrent writes that need no answer but "it is durable" share one database
//! transaction, so a burst of N requests costs one commit (and a few multi-row statements)
//! instead of N.
//!
//! One writer task per store drains a channel: once one of [`CONCURRENT_BATCHES`] committers is
//! free, it takes the first waiting write and everything queued behind it (up to a batch limit),
//! commits them together, and only then tells each caller. Nothing waits for a timer: under
//! light load a batch is one write and commits at once; under heavy load the writes that arrive
//! while every committer is busy form the next batch. If a batch fails, each of its writes is
//! retried alone, so one bad row (or a database that came back) gets its own, true answer.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{ExchangeRecord, StoreError};
use crate::domain::Transaction;

/// The most writes one batch commits.
pub const MAX_BATCH: usize = 256;

/// How many batches may be committing at once, each on its own connection. With one, a write
/// that arrives during a commit waits for it to finish before its own starts (the batches are
/// larger); with more, light load commits sooner. Measured on 2 cores (bench/README.md): 4 gave
/// a lower p50 but fewer, smaller batches, less throughput and a worse p99, so one it is.
pub const CONCURRENT_BATCHES: usize = 1;

/// A write the group committer can batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// A finished inquiry and its exchange: inserted together, final (no `sending` row; an
    /// inquiry moves no money).
    Inquiry(Box<Transaction>, Box<ExchangeRecord>),
    /// One upstream exchange of a transaction that is already stored (or of none).
    Exchange(Box<ExchangeRecord>),
    /// The first answer to an Idempotency-Key, stored for replay.
    CompleteKey(Box<KeyAnswer>),
}

/// The answer stored on a held Idempotency-Key.
#[derive(Debug, Clone)]
pub struct KeyAnswer {
    pub client: String,
    pub key: String,
    pub status: i32,
    pub body: String,
}

/// The rows of a batch, one multi-row statement each, in the order they must run: the
/// transactions, then the exchanges that may refer to them, then the Idempotency-Key answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchPart {
    Transactions,
    Exchanges,
    KeyAnswers,
}

impl BatchPart {
    pub const IN_ORDER: [BatchPart; 3] = [
        BatchPart::Transactions,
        BatchPart::Exchanges,
        BatchPart::KeyAnswers,
    ];

    /// The parts `writes` has rows for, in order.
    pub fn of(writes: &[Write]) -> impl Iterator<Item = BatchPart> + '_ {
        Self::IN_ORDER
            .into_iter()
            .filter(|part| writes.iter().any(|write| write.has(*part)))
    }
}

impl Write {
    fn has(&self, part: BatchPart) -> bool {
        matches!(
            (self, part),
            (
                Write::Inquiry(..),
                BatchPart::Transactions | BatchPart::Exchanges
            ) | (Write::Exchange(_), BatchPart::Exchanges)
                | (Write::CompleteKey(_), BatchPart::KeyAnswers)
        )
    }

    /// The transaction row this write inserts, if any.
    pub fn transaction(&self) -> Option<&Transaction> {
        match self {
            Write::Inquiry(transaction, _) => Some(transaction),
            _ => None,
        }
    }

    /// The exchange row this write inserts, if any.
    pub fn exchange(&self) -> Option<&ExchangeRecord> {
        match self {
            Write::Inquiry(_, exchange) | Write::Exchange(exchange) => Some(exchange),
            Write::CompleteKey(_) => None,
        }
    }

    /// The key answer this write stores, if any.
    pub fn key_answer(&self) -> Option<&KeyAnswer> {
        match self {
            Write::CompleteKey(answer) => Some(answer),
            _ => None,
        }
    }
}

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// The sending side, held by the store; the writer task stops when it is dropped.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<(Write, Reply)>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer task on the current Tokio runtime. `flush` commits a batch in one
    /// database transaction (all or nothing).
    pub fn spawn<F, Fut>(flush: F) -> Self
    where
        F: Fn(Arc<[Write]>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(receiver, flush));
        Self { queue }
    }

    /// Commits `write` (with whatever else is waiting) and returns once it is durable.
    pub async fn write(&self, write: Write) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((write, reply))
            .map_err(|_| anyhow::anyhow!("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the database writer stopped before committing"))?
    }
}

async fn run<F, Fut>(mut receiver: mpsc::UnboundedReceiver<(Write, Reply)>, flush: F)
where
    F: Fn(Arc<[Write]>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
{
    let flush = Arc::new(flush);
    let committers = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
    while let Some(first) = receiver.recv().await {
        // Wait for a free committer first: writes that arrive meanwhile join this batch.
        let Ok(committer) = committers.clone().acquire_owned().await else {
            break;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let flush = flush.clone();
        tokio::spawn(async move {
            commit(batch, &*flush).await;
            drop(committer);
        });
    }
}

/// Commits one batch and answers its callers.
async fn commit<F, Fut>(batch: Vec<(Write, Reply)>, flush: &F)
where
    F: Fn(Arc<[Write]>) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let (writes, mut replies): (Vec<Write>, Vec<Reply>) = batch.into_iter().unzip();
    let batch: Arc<[Write]> = writes.into();
    crate::metrics::observe_write_batch(batch.len());
    match flush(batch.clone()).await {
        Ok(()) => {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(error) if batch.len() == 1 => {
            let _ = replies.pop().map(|reply| reply.send(Err(error)));
        }
        // The database is away (or refuses every write): each write alone would wait its own
        // connection timeout in turn. Every write of the batch gets the answer now.
        Err(error) if same_for_every_write(&error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Err(error) => {
            tracing::warn!(error = %error, size = batch.len(), "batch write failed; retrying each write alone");
            for (write, reply) in batch.iter().zip(replies) {
                let single: Arc<[Write]> = Arc::from([write.clone()]);
                let _ = reply.send(flush(single).await);
            }
        }
    }
}

/// Whether an error is about the database rather than one write (unavailable, full,
/// read-only), so that every write of the batch would get it too.
fn same_for_every_write(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Unavailable(_) | StoreError::NotWritable(..)
    )
}
