//! `Application`: binds the listener, builds the router, serves until a shutdown future
//! completes, then drains and closes the store. The binary, the tests and the benchmark all
//! start Plinth through this one path.

use crate::alerts::Alerts;
use crate::alerts::recorder::Recorder;
use crate::config::ServerConfig;
use crate::fds;
use crate::limits::RequestLimits;
use crate::middleware::{Context, method_not_allowed, not_found, panic_response, request_context};
use crate::realtime::Realtime;
use crate::routes;
use crate::routes::metrics::SERIES_WINDOW;
use crate::serve::{self, ConnLimits};
use crate::state::AppState;
use crate::tls::{Tls, TlsError};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use plinth_store::Invalidation;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration cannot be served (an invalid CORS origin, say).
    #[error("{0}")]
    Refused(String),
    /// The TLS certificate or key cannot be used.
    #[error("cannot serve HTTPS: {0}")]
    Tls(#[from] TlsError),
}

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    state: AppState,
    drain_delay: Duration,
    shutdown_timeout: Duration,
    limits: ConnLimits,
    sweep_interval: Duration,
    /// How often the flags are loaded again, in case a notice was missed.
    flags_reload: Duration,
    idempotency_window: Duration,
    audit_retention: Option<Duration>,
    change_retention: Duration,
    backups: Option<crate::config::BackupSchedule>,
    tls: Option<Arc<Tls>>,
    /// The plain-HTTP listener that redirects to HTTPS, and its router.
    redirect: Option<(TcpListener, Router)>,
}

impl Application {
    /// Binds the listener and builds the router.
    pub async fn build(config: ServerConfig, state: AppState) -> Result<Self, StartError> {
        let listener = Self::bind(config.listen).await?;
        Self::on_listener(listener, config, state)
    }

    /// Binds `addr`: the binary binds first, before it opens and migrates the database, so
    /// a busy port changes nothing.
    pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    }

    /// Builds the application on an already bound listener (binding
    /// `config.redirect_from` here, when set).
    pub fn on_listener(
        listener: TcpListener,
        config: ServerConfig,
        state: AppState,
    ) -> Result<Self, StartError> {
        let redirect = config.redirect_from.map(bind_now).transpose()?;
        Self::on_listeners(listener, redirect, config, state)
    }

    /// Builds the application on already bound listeners: the main one, and the one for
    /// `config.redirect_from` (which must be given when that is set, and only then).
    pub fn on_listeners(
        listener: TcpListener,
        redirect: Option<TcpListener>,
        config: ServerConfig,
        state: AppState,
    ) -> Result<Self, StartError> {
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let tls = config.tls.clone().map(Tls::load).transpose()?.map(Arc::new);
        config.alerts.check().map_err(StartError::Refused)?;
        if let Some(alerts) = Alerts::new(&config.alerts) {
            state.set_alerts(Arc::new(alerts));
        }
        state.set_metrics_access(config.metrics.clone());
        if config.metrics.enabled {
            state.set_series(Arc::new(Recorder::new(SERIES_WINDOW)));
        }
        if let Some(files) = &config.files {
            let files =
                crate::files::Files::open(files, config.body_limit).map_err(StartError::Refused)?;
            state.set_files(Arc::new(files));
        }
        state.set_batch_body_limit(config.batch_body_limit);
        state.set_realtime(Arc::new(Realtime::new(
            config.realtime,
            state.metrics().realtime.clone(),
        )));
        let router = build_router(&config, state.clone())?;
        let redirect = match (redirect, &tls) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(StartError::Refused(
                    "a redirect to HTTPS needs HTTPS: set the certificate and key".to_owned(),
                ));
            }
            (Some(redirect), Some(_)) => {
                let router = redirect_router(&config, state.clone(), addr.port())?;
                Some((redirect, router))
            }
        };
        if let Some(mut notices) = state.store().invalidations() {
            // Accounts, keys or flags changed through another instance: drop cached
            // credentials, have the flags loaded again (by the reloader, so a slow load
            // never delays the next notice).
            let auth = Arc::clone(state.auth());
            let flags = Arc::clone(state.flags());
            tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    let notice = match notices.recv().await {
                        Ok(notice) => notice,
                        // Notices were missed: dropping every copy covers them too.
                        Err(RecvError::Lagged(_)) => Invalidation::All,
                        Err(RecvError::Closed) => return,
                    };
                    if notice.credentials() {
                        auth.forget_credentials();
                    }
                    if notice.flags() {
                        flags.announced();
                    }
                }
            });
        }
        Ok(Self {
            listener,
            addr,
            router,
            state,
            drain_delay: config.drain_delay,
            shutdown_timeout: config.shutdown_timeout,
            limits: ConnLimits {
                header_read_timeout: config.header_read_timeout,
                keep_alive_timeout: config.keep_alive_timeout,
                max_connections: connection_cap(config.max_connections),
            },
            sweep_interval: config.sweep_interval,
            flags_reload: config.flags_reload,
            idempotency_window: config.idempotency_window,
            audit_retention: config.audit_retention,
            change_retention: config.change_retention,
            backups: config.backups.clone(),
            tls,
            redirect,
        })
    }

    /// The state the server runs on.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Whether the server speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The bound address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address of the plain-HTTP port that redirects to HTTPS, if there is one.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Serves until `shutdown` completes; then reports not-ready for the drain delay, stops
    /// accepting, finishes in-flight requests and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        // The flags are held before the first request: `plinth.*` flags decide without
        // waiting for them (a failure here leaves them to the reloader, and the first
        // evaluation). They are loaded again periodically, on notices, and after failures.
        state.flags().changed(state.store().as_ref()).await;
        let flag_reloader = crate::flags::spawn_reloader(state.clone(), self.flags_reload);
        // Sweeping runs while the server serves, and stops before the store closes.
        let sweeper = crate::sweep::spawn(
            self.state.clone(),
            self.sweep_interval,
            crate::sweep::Keep {
                idempotency: self.idempotency_window,
                audit: self.audit_retention,
                changes: self.change_retention,
            },
        );
        // The change feed follows the log while the server serves.
        let hub = state
            .realtime()
            .map(|r| r.spawn_hub(Arc::clone(state.store())));
        // Alerts are evaluated while the server serves.
        let evaluator = crate::alerts::spawn(self.state.clone());
        // So do scheduled backups.
        let backups = self
            .backups
            .clone()
            .map(|schedule| crate::backups::spawn(self.state.clone(), schedule));
        // Certificate reloads run while the server serves.
        let reloader = self.tls.as_ref().map(Tls::spawn_reloader);
        let drain_delay = self.drain_delay;
        let drain = async move {
            shutdown.await;
            state.start_draining();
            tracing::info!(
                drain_delay_ms = drain_delay.as_millis() as u64,
                "shutdown requested; draining"
            );
            tokio::time::sleep(drain_delay).await;
        };
        let (graceful, connections) = tokio::sync::watch::channel(());
        // One connection budget for both ports: the cap is what the descriptors fit.
        let budget = serve::Connections::new(self.limits);
        let mut tasks = tokio::task::JoinSet::new();
        let mut redirect_tasks = tokio::task::JoinSet::new();
        // The redirect port closes with the main one.
        let (stopped, mut stopping) = tokio::sync::watch::channel(());
        let main = async {
            serve::accept_until(
                self.listener,
                self.router,
                Arc::clone(&budget),
                self.tls,
                drain,
                &connections,
                &mut tasks,
            )
            .await;
            let _ = stopped.send(());
        };
        let redirect = async {
            if let Some((listener, router)) = self.redirect {
                let stop = async move {
                    let _ = stopping.changed().await;
                };
                serve::accept_until(
                    listener,
                    router,
                    Arc::clone(&budget),
                    None,
                    stop,
                    &connections,
                    &mut redirect_tasks,
                )
                .await;
            }
        };
        tokio::join!(main, redirect);
        // Open change-feed streams end (`shutdown`) rather than hold the drain.
        if let Some(realtime) = self.state.realtime() {
            realtime.shut_down();
        }
        // The listeners are closed: every connection finishes its request and closes.
        let _ = graceful.send(());
        let grace = self.shutdown_timeout;
        let finished = async {
            while tasks.join_next().await.is_some() {}
            while redirect_tasks.join_next().await.is_some() {}
        };
        // Requests still running this long after the listener closed are abandoned, so a
        // stuck client cannot hold a shutdown (and a rollout) forever.
        if tokio::time::timeout(grace, finished).await.is_ok() {
            tracing::info!("in-flight requests finished");
        } else {
            tracing::warn!(
                timeout_ms = grace.as_millis() as u64,
                "requests still running at the shutdown timeout were abandoned"
            );
        }
        tasks.shutdown().await;
        redirect_tasks.shutdown().await;
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        flag_reloader.abort();
        if let Some(hub) = hub {
            hub.abort();
        }
        if let Some(evaluator) = evaluator {
            evaluator.abort();
        }
        if let Some(backups) = backups {
            backups.abort();
        }
        self.state.store().close().await;
        Ok(())
    }
}

fn build_router(config: &ServerConfig, state: AppState) -> Result<Router, StartError> {
    let alerts = state.alerts().cloned();
    let series = state.series().cloned();
    let (routes, _) = routes::router().split_for_parts();
    // The console's files are not part of the API, nor of its document.
    let routes = if config.admin_console {
        routes.merge(crate::admin::router())
    } else {
        routes
    };
    let track = config
        .metrics
        .enabled
        .then(|| crate::metrics::TrackLayer(Arc::clone(state.metrics())));
    let routes = layered(routes, config, alerts, series, track)?;
    Ok(routes.with_state(state))
}

/// Binds `addr` from a function that is not async (the runtime's reactor is running).
fn bind_now(addr: SocketAddr) -> Result<TcpListener, StartError> {
    let bind = |addr| {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener)
    };
    bind(addr).map_err(|source| StartError::Bind { addr, source })
}

/// The redirect port's router: every path and method answered by `redirect::answer`, with
/// the middleware of plain HTTP (no HSTS, which browsers ignore over plain HTTP).
fn redirect_router(
    config: &ServerConfig,
    state: AppState,
    https_port: u16,
) -> Result<Router, StartError> {
    let answer =
        move |req: axum::extract::Request| async move { crate::redirect::answer(&req, https_port) };
    let routes = Router::new()
        .route("/", axum::routing::any(answer))
        .route("/{*path}", axum::routing::any(answer));
    let plain = ServerConfig {
        tls: None,
        cors_origins: Vec::new(),
        ..config.clone()
    };
    with_middleware(routes, &plain).map(|r| r.with_state(state))
}

/// Adds the 404/405 fallbacks and the middleware stack (panics → 500, request ids and the
/// error envelope, body limit, CORS, HSTS over TLS) to `routes`. Public so tests can wrap routes of their
/// own (a handler that panics, say) exactly as the real ones are wrapped.
pub fn with_middleware(
    routes: Router<AppState>,
    config: &ServerConfig,
) -> Result<Router<AppState>, StartError> {
    layered(routes, config, None, None, None)
}

/// [`with_middleware`], with the alerts and the series' recorder the middleware feeds, and
/// the metrics' tracking (`track`) when metrics are on.
fn layered(
    routes: Router<AppState>,
    config: &ServerConfig,
    alerts: Option<Arc<Alerts>>,
    series: Option<Arc<Recorder>>,
    track: Option<crate::metrics::TrackLayer>,
) -> Result<Router<AppState>, StartError> {
    let limits = RequestLimits {
        request_timeout: config.request_timeout,
        body_idle_timeout: config.header_read_timeout,
        body_limit: config.body_limit,
        upload_limit: config
            .files
            .as_ref()
            .map_or(config.body_limit as u64, |f| f.upload_limit),
        batch_body_limit: config.batch_body_limit,
    };
    // CORS sits inside the request context, so preflight answers carry X-Request-Id too.
    let cors = match config.cors_origins.as_slice() {
        [] => None,
        origins => Some(cors(origins)?),
    };
    // Over TLS every answer, errors included, tells the browser to use HTTPS only.
    let hsts = config
        .tls
        .as_ref()
        .map(|t| t.hsts_max_age.as_secs())
        .filter(|&age| age > 0)
        .map(|age| {
            let value = HeaderValue::from_str(&format!("max-age={age}"))
                .map_err(|_| StartError::Refused(format!("invalid HSTS max-age {age}")))?;
            Ok::<_, StartError>(SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                value,
            ))
        })
        .transpose()?;
    // One stack, added in one `layer` call: each call boxes every route once more, and a
    // request then pays a clone, an allocation and a move per box. Outermost first:
    // compression, of the answer as finally made; the metrics' tracking outside the request
    // context, so the status counted is the one sent (an envelope rendered, a timeout, a
    // panic's 500); HSTS only over TLS (plain HTTP keeps its stack as it was); CORS inside
    // the request context, so preflight answers carry X-Request-Id too.
    let stack = tower::ServiceBuilder::new()
        .layer(crate::compress::layer(config.compression_min_bytes))
        .option_layer(track)
        .option_layer(hsts)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            Context {
                limits,
                alerts,
                series,
            },
            request_context,
        ))
        .option_layer(cors)
        .layer(CatchPanicLayer::custom(panic_response));
    Ok(routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(stack))
}

fn cors(origins: &[String]) -> Result<CorsLayer, StartError> {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o)
                    .map_err(|_| StartError::Refused(format!("invalid CORS origin {o:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("traceparent"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("traceparent"),
        ])
        .max_age(Duration::from_secs(600)))
}

/// `max_connections`, lowered (with a warning) when it would not leave room under the
/// process's file-descriptor limit for the database and files.
fn connection_cap(configured: usize) -> usize {
    let soft = fds::soft_limit();
    let cap = fds::connection_cap(configured, soft);
    if cap < configured {
        tracing::warn!(
            max_connections = configured,
            serving_at_most = cap,
            open_files_limit = soft,
            reserve = fds::FD_RESERVE,
            "max_connections does not fit under the open-files limit (ulimit -n) with room \
             for the database; serving fewer connections: raise the limit or lower the cap"
        );
    }
    cap
}
