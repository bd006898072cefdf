//! The application: the shared state, the router over every edge, and the serve loop with
//! graceful shutdown. Nothing below imports it: each edge declares the part of the state it
//! uses (`api::ApiState`, `ws::WsState`, `oauth::routes::OAuthState`), and this module makes
//! them from [`AppState`].
//!
//! - [`listen`]: the accept loop, HTTP/1.1 with deadlines and caps on request heads.

pub mod listen;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::ApiState;
use crate::auth::origin::AllowedOrigins;
use crate::auth::AuthService;
use crate::backup::control::Control;
use crate::bots::{BotError, BotService, Directory};
use crate::config::Config;
use crate::limits::Limits;
use crate::oauth::routes::OAuthState;
use crate::oauth::OAuth;
use crate::protocol::codes::GOING_AWAY;
use crate::rooms::registry::RoomContext;
use crate::rooms::Registry;
use crate::sockets::Connections;
use crate::store::{Store, StoreError};
use crate::ws::WsState;

/// Everything the server shares; each edge takes its part (`FromRef` below). Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Arc<AuthService>,
    /// Sign-in through OAuth providers and the flows in progress.
    pub oauth: Arc<OAuth>,
    pub origins: Arc<AllowedOrigins>,
    pub rooms: Arc<Registry>,
    pub connections: Arc<Connections>,
    /// The loaded bot plugins and their commands.
    pub bots: Arc<Directory>,
    /// Room creations, unknown room codes and open sockets, counted per user and address.
    pub limits: Arc<Limits>,
    /// Cancelled at shutdown: sockets stop taking frames.
    pub stop_reading: CancellationToken,
    /// Every open socket's task, so shutdown can wait for them.
    pub sockets: TaskTracker,
    metrics: PrometheusHandle,
}

impl FromRef<AppState> for ApiState {
    fn from_ref(state: &AppState) -> ApiState {
        ApiState {
            config: state.config.clone(),
            store: state.store.clone(),
            auth: state.auth.clone(),
            oauth: state.oauth.clone(),
            origins: state.origins.clone(),
            limits: state.limits.clone(),
            rooms: state.rooms.clone(),
            connections: state.connections.clone(),
        }
    }
}

impl FromRef<AppState> for WsState {
    fn from_ref(state: &AppState) -> WsState {
        WsState {
            config: state.config.clone(),
            store: state.store.clone(),
            auth: state.auth.clone(),
            origins: state.origins.clone(),
            limits: state.limits.clone(),
            rooms: state.rooms.clone(),
            connections: state.connections.clone(),
            stop_reading: state.stop_reading.clone(),
            sockets: state.sockets.clone(),
        }
    }
}

impl FromRef<AppState> for OAuthState {
    fn from_ref(state: &AppState) -> OAuthState {
        OAuthState {
            config: state.config.clone(),
            auth: state.auth.clone(),
            oauth: state.oauth.clone(),
            origins: state.origins.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A damaged database, with what to do about it: hearth never serves one.
    #[error("{source}\n{advice}")]
    Damaged { source: StoreError, advice: String },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot set up the HTTP client for sign-in providers: {0}")]
    OAuthClient(#[from] reqwest::Error),
    #[error("cannot start the bots: {0}")]
    Bots(#[from] BotError),
}

/// An opened server: the store is open (and locked), nothing is listening yet.
pub struct Server {
    state: AppState,
}

impl Server {
    /// Opens the store. Fails fast, before any port is bound, if another hearth holds it.
    pub fn open(config: Config) -> Result<Server, ServeError> {
        if let Some(warning) = crate::files::open_to_others(&config.data_dir) {
            tracing::warn!("{warning}");
        }
        let store =
            Store::open_configured(&config.data_dir, &config.store).map_err(|e| match e {
                StoreError::Damaged { .. } => ServeError::Damaged {
                    advice: crate::backup::auto::restore_advice(&config.data_dir),
                    source: e,
                },
                other => other.into(),
            })?;
        let connections = Arc::new(Connections::default());
        let bots = Arc::new(Directory::new(config.bots.enabled, config.bots.max_queued));
        let rooms = Registry::new(RoomContext {
            store: store.clone(),
            bots: bots.clone(),
            config: config.rooms.clone(),
            connections: connections.clone(),
        });
        let state = AppState {
            auth: Arc::new(AuthService::new(store.clone(), config.auth.clone())),
            oauth: Arc::new(OAuth::new(&config, store.clone())?),
            origins: Arc::new(AllowedOrigins::from_config(&config)),
            limits: Arc::new(Limits::from_config(&config)),
            config: Arc::new(config),
            store,
            rooms,
            connections,
            bots,
            stop_reading: CancellationToken::new(),
            sockets: TaskTracker::new(),
            metrics: metrics_handle(),
        };
        Ok(Server { state })
    }

    /// The router over this server's state, without a listener: what the fuzz targets send
    /// requests to directly. Requests must carry a `ConnectInfo<SocketAddr>` extension.
    pub fn app(&self) -> Router {
        router(self.state.clone())
    }

    /// The open store. Tests use it to look at (and age) what the server keeps; holding a
    /// clone past the server's stop keeps the database locked.
    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// Serves until `shutdown` resolves, then: stops accepting; lets in-flight requests finish;
    /// stops reading sockets, lets every room deliver what it has made durable, and closes the
    /// sockets with 1001 after their queues are written; all within `http.shutdown_grace_secs`.
    /// Last, every write is flushed to disk.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let state = self.state;
        let store = state.store.clone();
        let sockets = state.sockets.clone();
        let (stop_reading, rooms, connections) = (
            state.stop_reading.clone(),
            state.rooms.clone(),
            state.connections.clone(),
        );
        let grace = Duration::from_secs(state.config.http.shutdown_grace_secs);
        let url = served_url(&state.config, listener.local_addr()?);
        // How `hearth backup` and `hearth export` reach this server (see backup::control). A
        // server without it still serves; only online backups are lost, and it says so.
        let control = match Control::start(&state.config.data_dir, store.clone()) {
            Ok(control) => Some(control),
            Err(e) => {
                tracing::warn!(error = %e, "no control socket, so no online backups");
                None
            }
        };
        let stop_backups = CancellationToken::new();
        tokio::spawn(crate::store::erase::run(
            store.clone(),
            Duration::from_millis(state.config.store.erase_after_ms),
            stop_backups.clone(),
        ));
        if state.config.backup.auto {
            tokio::spawn(crate::backup::auto::run(
                store.clone(),
                state.config.data_dir.clone(),
                state.config.backup.clone(),
                stop_backups.clone(),
            ));
        }
        let bots = BotService::start(
            &state.config,
            store.clone(),
            state.bots.clone(),
            Arc::new(state.rooms.clone()),
        )?;
        crate::web::precompress();
        tracing::info!("hearth is serving on {url}");

        let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
        let limits =
            listen::HttpLimits::from_config(&state.config.http, state.config.trust_proxy_headers);
        let app = router(state);
        let serve = listen::serve(listener, app, limits, async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing requests");
            let _ = stopping_tx.send(true);
            stop_reading.cancel();
            bots.shutdown().await;
            rooms.shutdown().await;
            connections.close_all(GOING_AWAY.0, GOING_AWAY.1);
        });
        let deadline = async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(grace).await;
        };
        let finished = async move {
            serve.await;
            sockets.close();
            sockets.wait().await;
            Ok::<_, std::io::Error>(())
        };
        tokio::select! {
            finished = finished => finished?,
            () = deadline => tracing::warn!("requests still running after the grace period; stopping anyway"),
        }
        // No snapshot starts once the socket is gone and the schedule stopped.
        drop(control);
        stop_backups.cancel();
        store.commit().await?;
        // What was deleted goes before the stop, not at the next start.
        if store.erase_owed().unwrap_or(false) {
            let erasing = store.clone();
            match tokio::task::spawn_blocking(move || erasing.erase_now()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "erasing deleted text failed; the next start tries again")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "erasing deleted text stopped; the next start tries again")
                }
            }
        }
        store.flush_blocking()?;
        // Nothing writes any more: the next start may trust the files as they are now.
        if let Err(e) = store.seal_clean_stop() {
            tracing::warn!(error = %e, "cannot seal the database; the next start checks it all");
        }
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Opens the store and serves on `listener` until `shutdown` resolves. Tests call this with a
/// listener bound to port 0.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    Server::open(config)?.run(listener, shutdown).await
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.http.max_body_bytes;
    let api = crate::api::router().with_state(ApiState::from_ref(&state));
    let ws = get(crate::ws::upgrade).with_state(WsState::from_ref(&state));
    let oauth = crate::oauth::router().with_state(OAuthState::from_ref(&state));
    Router::new()
        .nest("/api", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/icons/badge/{name}", get(crate::web::serve_badge))
        .route("/ws", ws)
        .merge(oauth)
        .fallback(crate::web::serve_asset)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(count_requests))
        .layer(if body_limit == 0 {
            DefaultBodyLimit::disable()
        } else {
            DefaultBodyLimit::max(body_limit)
        })
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> String {
    // Summed when asked rather than kept up to date: a gauge moved on every queued frame
    // would cost the fan-out.
    let (total, most) = state.connections.queued_bytes();
    metrics::gauge!("hearth_ws_queued_bytes").set(total as f64);
    metrics::gauge!("hearth_ws_queued_bytes_max").set(most as f64);
    let peak = crate::sockets::outbox::peak_queued_bytes();
    metrics::gauge!("hearth_ws_queued_bytes_peak").set(peak as f64);
    state.metrics.render()
}

/// The policy of every answer that does not bring its own (the UI's pages bring a richer one,
/// see `web`): load nothing, be framed by nobody, submit forms nowhere.
const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Headers every answer carries, the JSON API, errors, pages and the UI alike, unless a handler
/// set its own: a strict Content-Security-Policy, no framing, no MIME sniffing, no Referer, no
/// embedding by other sites; and API answers, which hold people's data, are never cached.
async fn security_headers(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, DEFAULT_CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn count_requests(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let class = match response.status().as_u16() {
        100..=399 => "ok",
        400..=499 => "client_error",
        _ => "server_error",
    };
    metrics::counter!("hearth_http_responses_total", "class" => class).increment(1);
    response
}

/// The recorder is process-wide (the `metrics` macros use a global), so several servers in one
/// test process share it.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

fn served_url(config: &Config, local: SocketAddr) -> String {
    if !config.public_url.is_empty() {
        return config.public_url();
    }
    if local.ip().is_unspecified() {
        format!("http://localhost:{}", local.port())
    } else {
        format!("http://{local}")
    }
}
