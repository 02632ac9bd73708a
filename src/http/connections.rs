//! Slow clients and connections per address (API.md, "Abuse and slow clients").
//!
//! actix-http times the head of a connection's first request only, and no body read at all. So
//! every accepted connection is a [`TimedStream`], whose reads are timed by what the connection
//! is doing ([`ConnectionState`]): between requests only keep-alive applies; a request head must
//! arrive within `http.client_timeout_ms` of its first byte (until the [`track`] middleware sees
//! the parsed request), or the read fails and actix closes the connection. The [`track`]
//! middleware then reads the body itself, within that long of its head (408 and the connection
//! closed otherwise), before any handler runs: so the time a handler takes (a database that is
//! slow to answer, an upstream call) is never counted against the client.
//!
//! [`ConnectionCounts`] caps the open connections of one peer address; trusted proxies (which
//! carry many clients) are not counted.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_rt::net::TcpStream;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, ResponseError};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::client_address::TrustedProxies;
use super::error::ApiError;

/// What a connection is doing, for the read timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests (or before the first byte): keep-alive applies, nothing else.
    Idle,
    /// A request head is arriving; it must be complete by then.
    Head(Instant),
    /// The head is in: [`track`] times the body itself; then the handler runs.
    Handling,
}

#[derive(Debug)]
struct StateInner {
    phase: Phase,
    /// The connection's task, woken when the phase changes so that the stream re-arms its timer.
    waker: Option<Waker>,
}

/// The phase of one connection, shared by its stream and its requests (as connection data).
#[derive(Debug)]
pub struct ConnectionState {
    inner: Mutex<StateInner>,
    timeout: Duration,
}

impl ConnectionState {
    fn new(timeout: Duration) -> Self {
        Self {
            inner: Mutex::new(StateInner {
                phase: Phase::Idle,
                waker: None,
            }),
            timeout,
        }
    }

    fn inner(&self) -> MutexGuard<'_, StateInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deadline(&self) -> Option<Instant> {
        match self.inner().phase {
            Phase::Head(deadline) => Some(deadline),
            Phase::Idle | Phase::Handling => None,
        }
    }

    /// Bytes arrived: between requests, they start a head.
    fn bytes_read(&self) {
        let mut inner = self.inner();
        if inner.phase == Phase::Idle {
            inner.phase = Phase::Head(Instant::now() + self.timeout);
        }
    }

    fn set_phase(&self, phase: Phase) {
        let mut inner = self.inner();
        inner.phase = phase;
        if let Some(waker) = inner.waker.take() {
            waker.wake();
        }
    }

    /// The head is parsed: nothing is timed at the stream until the response is on its way.
    fn request_started(&self) {
        self.set_phase(Phase::Handling);
    }

    /// The response is on its way: the connection waits for its next request.
    fn request_done(&self) {
        self.set_phase(Phase::Idle);
    }
}

/// An accepted connection whose reads are timed by its [`ConnectionState`].
pub struct TimedStream {
    io: TcpStream,
    state: Arc<ConnectionState>,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    _slot: Option<Slot>,
}

impl TimedStream {
    /// The state the connection's requests update ([`track`] finds it as connection data).
    pub fn state(&self) -> Arc<ConnectionState> {
        self.state.clone()
    }

    /// `Err` once the current head or body is overdue; arms the timer (and so registers the
    /// task's waker with it) for the current deadline.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(deadline) = self.state.deadline() else {
            return Ok(());
        };
        if self.armed != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client sent its request too slowly",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.state.inner().waker = Some(cx.waker().clone());
        if let Err(error) = this.poll_deadline(cx) {
            tracing::info!("connection closed: request head or body too slow");
            return Poll::Ready(Err(error));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.bytes_read();
            // Arm the timer of a head that just began.
            if let Err(error) = this.poll_deadline(cx) {
                return Poll::Ready(Err(error));
            }
        }
        read
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Open connections per peer address.
#[derive(Debug)]
pub struct ConnectionCounts {
    open: Mutex<HashMap<IpAddr, usize>>,
    max_per_address: usize,
    uncounted: TrustedProxies,
    timeout: Duration,
}

impl ConnectionCounts {
    pub fn new(max_per_address: usize, uncounted: TrustedProxies, timeout: Duration) -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            max_per_address,
            uncounted,
            timeout,
        }
    }

    fn open(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for one more connection from `address`, or `None` when it has its maximum open.
    fn admit(self: &Arc<Self>, address: IpAddr) -> Option<Option<Slot>> {
        if self.uncounted.contains(address) {
            return Some(None);
        }
        let mut open = self.open();
        let count = open.entry(address).or_default();
        if *count >= self.max_per_address {
            return None;
        }
        *count += 1;
        Some(Some(Slot {
            counts: self.clone(),
            address,
        }))
    }

    /// The accept step of the server: a connection over its address's maximum is closed at once.
    pub fn accept(
        self: &Arc<Self>,
        io: TcpStream,
    ) -> Result<(TimedStream, Option<SocketAddr>), DispatchError> {
        let peer = io.peer_addr().ok();
        let slot = match peer {
            Some(peer) => self.admit(peer.ip()).ok_or_else(|| {
                tracing::debug!(peer = %peer.ip(), "connection refused: too many from this address");
                DispatchError::Io(io::Error::other("too many connections from this address"))
            })?,
            None => None,
        };
        Ok((
            TimedStream {
                io,
                state: Arc::new(ConnectionState::new(self.timeout)),
                timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
                armed: None,
                _slot: slot,
            },
            peer,
        ))
    }
}

/// One counted connection; closing it frees its place.
#[derive(Debug)]
struct Slot {
    counts: Arc<ConnectionCounts>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.open();
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Whether the request announces a body.
fn has_body(request: &ServiceRequest) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .is_some_and(|length| length > 0)
}

/// Reads a request body of up to this many bytes before the handler runs (the app's payload
/// limit); a larger one is passed on as it comes (the handler refuses it, 413).
const BUFFERED_BODY_BYTES: usize = 4 * super::body::MAX_BODY_BYTES;

/// Reads `payload` until its end, or past [`BUFFERED_BODY_BYTES`]: what was read (an error of the
/// stream as its last item), and the rest of the stream if it was not read to the end.
async fn read_body(mut payload: Payload) -> (Vec<Result<Bytes, PayloadError>>, Option<Payload>) {
    let mut read = Vec::new();
    let mut bytes = 0;
    while let Some(chunk) = payload.next().await {
        let failed = chunk.is_err();
        bytes += chunk.as_ref().map_or(0, Bytes::len);
        read.push(chunk);
        if failed {
            return (read, None);
        }
        if bytes > BUFFERED_BODY_BYTES {
            return (read, Some(payload));
        }
    }
    (read, None)
}

/// Middleware (for `actix_web::middleware::from_fn`): tells the connection that a request's
/// head is in and when its response is on the way, and reads the body within
/// `http.client_timeout_ms` of the head (else 408, and the connection is closed).
pub async fn track<B: MessageBody>(
    mut request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = request.conn_data::<Arc<ConnectionState>>().cloned() else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    state.request_started();
    if has_body(&request) {
        let read = tokio::time::timeout(state.timeout, read_body(request.take_payload())).await;
        let Ok((chunks, rest)) = read else {
            tracing::info!("request refused: its body was not sent in time");
            let response = ApiError::RequestTimeout.error_response();
            state.request_done();
            return Ok(request.into_response(response).map_into_right_body());
        };
        let replay = futures_util::stream::iter(chunks);
        let body: actix_http::BoxedPayloadStream = match rest {
            Some(rest) => Box::pin(replay.chain(rest)),
            None => Box::pin(replay),
        };
        request.set_payload(Payload::from(body));
    }
    let result = next.call(request).await;
    state.request_done();
    Ok(result?.map_into_left_body())
}
