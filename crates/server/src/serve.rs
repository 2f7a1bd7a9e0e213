//! The accept loop and the connections: HTTP/1.1 through hyper (and HTTP/2 over TLS, when
//! the client asks for it by ALPN), with the limits `axum::serve` has no settings for. A connection has `header_read_timeout` to send a
//! request head (from when it opens, or from the first byte of a later request), may idle
//! `keep_alive_timeout` between requests, and at most `max_connections` are served at once:
//! at the cap a new connection closes the one idle the longest or, with none idle, one
//! whose request has waited on its body for longer than `header_read_timeout` (a body
//! trickled in), else waits for one to end. Out of file descriptors, the loop closes the
//! connection idle the longest too.
//!
//! A request counts as in flight from its head until its answer has been written out (the
//! answer's body ended and the socket flushed), so neither the idle timeout nor eviction
//! cuts off an answer a slow reader is still receiving.
//!
//! HTTP/2 differs where its framing does: many requests share a connection at once (at most
//! [`MAX_H2_STREAMS`]), a request ends when hyper has taken its whole answer into the
//! connection's send buffer, and bytes arriving on an idle connection (pings, window
//! updates) do not start the head timeout: an idle HTTP/2 connection closes after
//! `keep_alive_timeout` unless a request arrives, and its first request must arrive within
//! `header_read_timeout` of the handshake. Each request's body is watched on its own: a
//! connection whose every request in flight waits on its body, the oldest for longer than
//! `header_read_timeout`, is evicted as a trickling HTTP/1.1 one is. A closed HTTP/2
//! connection is sent a `GOAWAY` first.

mod conns;

pub(crate) use conns::Connections;
use conns::{Conn, NONE, Stream};

use crate::limits::BodyProgress;
use crate::tls::Tls;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Largest request head hyper buffers. Heads up to this size reach the application, which
/// answers those over its own limits (`crate::limits`) with the error envelope; a larger one
/// is refused by hyper itself (a bare 431) and the connection closed.
const MAX_HEAD_BUFFER: usize = 128 * 1024;

/// Most header lines hyper parses (the application refuses more than `limits::MAX_HEADERS`).
const MAX_HEADER_LINES: usize = 256;

/// Most HTTP/2 streams (requests) open at once on one connection; a client opening more
/// has the extra ones refused (`REFUSED_STREAM`), which it may retry. With the connection
/// cap it bounds the requests in flight: at most `max_connections` × this many.
pub const MAX_H2_STREAMS: u32 = 32;

/// How long a closing HTTP/2 connection is still driven so its `GOAWAY` goes out.
const GOAWAY_GRACE: Duration = Duration::from_millis(250);

/// The protocol a connection speaks: HTTP/1.1, or HTTP/2 when TLS negotiated `h2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// After an accept error such as EMFILE (out of file descriptors), how long the loop waits
/// before accepting again, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At the connection cap, how often the loop looks again for an idle connection to close.
const ROOM_RECHECK: Duration = Duration::from_millis(100);

/// The connection limits of [`crate::ServerConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// Counts a request as in flight: until dropped while it is being handled, then inside its
/// answer's body ([`Sending`]) until that body has been written out.
struct InFlight {
    conn: Arc<Conn>,
    shared: Arc<Connections>,
    /// Handed over to the flush that writes the answer out.
    sent: bool,
    /// HTTP/2: the id of the request among the connection's streams.
    stream: Option<u64>,
}

impl InFlight {
    /// Counts a request in; with the reading of its body to put in its extensions.
    fn begin(conn: &Arc<Conn>, shared: &Arc<Connections>) -> (Self, BodyProgress) {
        let now = shared.now();
        conn.busy_since.store(now, Ordering::Release);
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        let (stream, body) = if conn.http2 {
            let id = conn.next_stream.fetch_add(1, Ordering::Relaxed);
            let body = BodyProgress::default();
            conn.streams
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Stream {
                    id,
                    began: now,
                    body: body.clone(),
                });
            (Some(id), body)
        } else {
            (None, conn.body.clone())
        };
        let in_flight = Self {
            conn: Arc::clone(conn),
            shared: Arc::clone(shared),
            sent: false,
            stream,
        };
        (in_flight, body)
    }

    /// hyper has taken the whole answer: over HTTP/1.1 the request ends once it has
    /// written it out, at the next completed flush of the socket (hyper flushes the socket
    /// only once its own buffer is empty; see [`Watched::poll_flush`]). Over HTTP/2 it ends
    /// now: the answer is in the connection's send buffer, and other streams' writes make
    /// flushes no mark of this one's end.
    fn sent(mut self) {
        if self.conn.http2 {
            return;
        }
        self.sent = true;
        self.conn.flush_pending.store(true, Ordering::Release);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(id) = self.stream {
            self.conn
                .streams
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|s| s.id != id);
        }
        if !self.sent {
            self.conn.finish(&self.shared);
        }
    }
}

/// An answer's body, keeping its request in flight until hyper is done with it (hyper
/// drops the body after taking its last part, or at once when it has none).
struct Sending {
    inner: Body,
    in_flight: Option<InFlight>,
}

impl Drop for Sending {
    fn drop(&mut self) {
        if let Some(in_flight) = self.in_flight.take() {
            in_flight.sent();
        }
    }
}

impl hyper::body::Body for Sending {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket (or the TLS stream over it), noting when the first byte of a request head
/// arrives on an idle connection.
struct Watched<S> {
    stream: S,
    conn: Arc<Conn>,
    shared: Arc<Connections>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        // The watcher is not woken (a request costs no extra task wake-up): it looks again
        // at least every `header_read_timeout`, so the head is still cut off on time.
        if buf.filled().len() > before
            && !self.conn.http2
            && self.conn.in_flight.load(Ordering::Acquire) == 0
            && self.conn.head_started.load(Ordering::Acquire) == NONE
        {
            self.conn
                .head_started
                .store(self.shared.now(), Ordering::Release);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        if matches!(polled, Poll::Ready(Ok(())))
            && self.conn.flush_pending.swap(false, Ordering::AcqRel)
        {
            self.conn.finish(&self.shared);
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Accepts connections until `stop` completes, serving each in a task of `tasks` (over TLS
/// when `tls` is given) within the budget `shared`, which other listeners may share. On
/// return the listener is closed; `graceful` then tells every connection to finish its
/// request and close.
pub(crate) async fn accept_until(
    listener: TcpListener,
    router: Router,
    shared: Arc<Connections>,
    tls: Option<Arc<Tls>>,
    stop: impl Future<Output = ()>,
    graceful: &watch::Receiver<()>,
    tasks: &mut JoinSet<()>,
) {
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = stop.as_mut() => return,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // EMFILE and the like: free a descriptor by closing the connection idle the
                // longest, and wait, so the loop does not spin while out of resources.
                let evicted = shared.evict_one();
                tracing::warn!(error = %e, evicted, "accept failed; retrying shortly");
                tokio::select! {
                    () = stop.as_mut() => return,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Some(permit) = shared.room(&mut stop).await else {
            return;
        };
        // Small JSON responses: do not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let (router, shared, graceful) = (router.clone(), Arc::clone(&shared), graceful.clone());
        match &tls {
            None => tasks.spawn(serve_connection(
                stream,
                Protocol::Http1,
                peer,
                router,
                shared,
                graceful,
                permit,
            )),
            Some(tls) => tasks.spawn(serve_tls(
                tls.acceptor(),
                stream,
                peer,
                router,
                shared,
                graceful,
                permit,
            )),
        };
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The TLS handshake, then the connection as [`serve_connection`], in HTTP/2 when the client
/// chose `h2` by ALPN, else HTTP/1.1. The handshake has `header_read_timeout`, like a
/// request head, and is dropped at shutdown; a client that speaks no TLS (plain HTTP to the
/// HTTPS port) fails it and is closed.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    shared: Arc<Connections>,
    mut graceful: watch::Receiver<()>,
    permit: OwnedSemaphorePermit,
) {
    let handshake =
        tokio::time::timeout(shared.limits.header_read_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, %peer, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        _ = graceful.changed() => return,
    };
    let protocol = match stream.get_ref().1.alpn_protocol() {
        Some(b"h2") => Protocol::Http2,
        _ => Protocol::Http1,
    };
    serve_connection(stream, protocol, peer, router, shared, graceful, permit).await;
}

/// Runs an HTTP/2 connection's streams: tasks that end with the connection (a dropped
/// connection aborts its streams' handlers, as a dropped HTTP/1.1 connection drops its one).
#[derive(Clone, Default)]
struct Streams(Arc<Mutex<JoinSet<()>>>);

impl<F> hyper::rt::Executor<F> for Streams
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        let mut streams = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget the streams that ended, so a long connection does not pile them up.
        while streams.try_join_next().is_some() {}
        streams.spawn(async move {
            fut.await;
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    protocol: Protocol,
    peer: SocketAddr,
    router: Router,
    shared: Arc<Connections>,
    mut graceful: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (id, conn) = shared.register(protocol);
    let io = TokioIo::new(Watched {
        stream,
        conn: Arc::clone(&conn),
        shared: Arc::clone(&shared),
    });
    let (svc_conn, svc_shared) = (Arc::clone(&conn), Arc::clone(&shared));
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let (in_flight, body) = InFlight::begin(&svc_conn, &svc_shared);
        req.extensions_mut().insert(body);
        let router = router.clone();
        async move {
            let res = router.oneshot(req).await?;
            Ok::<_, std::convert::Infallible>(res.map(|inner| {
                Body::new(Sending {
                    inner,
                    in_flight: Some(in_flight),
                })
            }))
        }
    });
    match protocol {
        Protocol::Http1 => {
            let served = hyper::server::conn::http1::Builder::new()
                // The head's time is this module's watch, which starts at the first byte.
                .header_read_timeout(None)
                .max_buf_size(MAX_HEAD_BUFFER)
                .max_headers(MAX_HEADER_LINES)
                .serve_connection(io, service);
            tokio::pin!(served);
            drive(
                served,
                |c| c.graceful_shutdown(),
                &shared,
                &conn,
                &mut graceful,
            )
            .await;
        }
        Protocol::Http2 => {
            let streams = Streams::default();
            let served = hyper::server::conn::http2::Builder::new(streams.clone())
                .max_concurrent_streams(MAX_H2_STREAMS)
                // The application answers heads over its own limits with the envelope.
                .max_header_list_size(u32::try_from(MAX_HEAD_BUFFER).unwrap_or(u32::MAX))
                .serve_connection(io, service);
            tokio::pin!(served);
            drive(
                served,
                |c| c.graceful_shutdown(),
                &shared,
                &conn,
                &mut graceful,
            )
            .await;
            // Streams still running when the connection ended are abandoned.
            drop(streams);
        }
    }
    shared.unregister(id);
}

/// Serves a connection until it ends, its watcher closes it, or shutdown asks it (by
/// `shutdown`) to finish its requests and close.
async fn drive<C>(
    mut served: Pin<&mut C>,
    shutdown: impl Fn(Pin<&mut C>),
    shared: &Connections,
    conn: &Conn,
    graceful: &mut watch::Receiver<()>,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let mut closing = false;
    loop {
        tokio::select! {
            served = served.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            // Dropping the connection closes it: no request is in flight, or every one waits
            // on a body the client trickles. HTTP/2 tells the client first, with a GOAWAY.
            () = shared.watch(conn) => {
                if conn.http2 && !closing {
                    shutdown(served.as_mut());
                    let _ = tokio::time::timeout(GOAWAY_GRACE, served.as_mut()).await;
                }
                break;
            }
            _ = graceful.changed(), if !closing => {
                closing = true;
                shutdown(served.as_mut());
            }
        }
    }
}
