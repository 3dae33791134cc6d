//! The router with its middleware, and serving it with graceful shutdown.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{self, AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;
use crate::error::AppError;
use crate::facebook;
use crate::facebook::routes::FacebookState;
use crate::sandbox::Sandbox;
use crate::telemetry;

/// Maximum request URI length accepted, in bytes. A callback URI with Facebook's code and
/// error parameters is well under 2 KB.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Maximum total of header names and values accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Maximum number of cookies accepted in one request. The service sets at most five of its
/// own, so the rest of the limit is for other cookies of the same site.
pub const MAX_COOKIES: usize = 64;

/// How long requests in flight may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Builds the whole application: routes, CORS and logging. With `sandbox`,
/// the fake Facebook is mounted at `/sandbox`.
pub fn build_app(config: &Config, sandbox: Option<Sandbox>) -> Result<Router, reqwest::Error> {
    let facebook_state = Arc::new(FacebookState::new(config.facebook.clone())?);

    // The 405 fallback is set here, inside the CORS layer, so that CORS
    // responds to preflight OPTIONS requests before the method check does.
    let facebook_routes = facebook::router()
        .method_not_allowed_fallback(facebook::routes::reject_method)
        .layer(build_cors(&config.cors_allowed_origins))
        .with_state(facebook_state);

    let mut routes = Router::new()
        .route("/", get(check_health))
        .merge(facebook_routes);
    if let Some(sandbox) = sandbox {
        routes = routes.nest("/sandbox", sandbox.router());
    }
    let routes = routes
        .route_layer(telemetry::RecordMatchedPathLayer)
        .fallback(reject_unknown_route)
        .method_not_allowed_fallback(reject_method);

    // Middleware for every request wraps the router as a whole rather than
    // each route (`Router::layer`): tower services are cloned per request,
    // and a per-route stack of boxed services cost a large share of each
    // request in profiles.
    let middleware = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(telemetry::RequestLogLayer)
        .layer(CatchPanicLayer::custom(report_panic))
        .layer(RequestLimitsLayer);
    Ok(Router::new().fallback_service(middleware.service(routes)))
}

/// `GET /`: a health check for load balancers; it touches nothing upstream.
async fn check_health() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        r#"{"status":"ok"}"#,
    )
}

/// Turns a panic in a handler into the JSON 500 and logs its message, so a
/// bug costs one request, not the connection.
fn report_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request handler panicked");
    AppError::Internal.into_response()
}

/// Layer that rejects requests larger than any this service needs, before
/// routing, with the JSON error shape. hyper enforces its own larger limits
/// first. A tower service rather than `from_fn`, which would box per request.
#[derive(Debug, Clone, Copy, Default)]
struct RequestLimitsLayer;

impl<S> Layer<S> for RequestLimitsLayer {
    type Service = RequestLimits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLimits { inner }
    }
}

#[derive(Debug, Clone)]
struct RequestLimits<S> {
    inner: S,
}

impl<S> Service<Request> for RequestLimits<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequestLimitsFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match check_request_limits(&request) {
            Ok(()) => RequestLimitsFuture::Admitted {
                inner: self.inner.call(request),
            },
            Err(error) => RequestLimitsFuture::Rejected {
                response: Some(error.into_response()),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RequestLimits`]: the router's, or the rejection at once.
    #[project = RequestLimitsProjection]
    enum RequestLimitsFuture<F> {
        Admitted { #[pin] inner: F },
        Rejected { response: Option<Response> },
    }
}

impl<F> Future for RequestLimitsFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RequestLimitsProjection::Admitted { inner } => inner.poll(context),
            RequestLimitsProjection::Rejected { response } => {
                let response = response
                    .take()
                    .expect("a future is not polled after it is ready");
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// Returns the error for a request over the URI, header or cookie limits.
fn check_request_limits(request: &Request) -> Result<(), AppError> {
    let uri = request.uri();
    let uri_bytes = uri.path().len() + uri.query().map_or(0, |query| query.len() + 1);
    if uri_bytes > MAX_URI_BYTES {
        return Err(AppError::UriTooLong(MAX_URI_BYTES));
    }

    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(AppError::HeadersTooLarge(MAX_HEADER_BYTES));
    }

    let cookie_count: usize = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .map(|value| value.as_bytes().split(|byte| *byte == b';').count())
        .sum();
    if cookie_count > MAX_COOKIES {
        return Err(AppError::TooManyCookies(MAX_COOKIES));
    }
    Ok(())
}

async fn reject_unknown_route() -> Response {
    AppError::NotFound.into_response()
}

async fn reject_method() -> Response {
    AppError::MethodNotAllowed.into_response()
}

/// Builds CORS: with no origins configured, any origin without credentials;
/// otherwise exactly those origins, with credentials.
fn build_cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600));
    if origins.is_empty() {
        return layer.allow_origin(cors::Any).allow_headers(cors::Any);
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    layer
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and lets requests in flight finish for up to [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, waiting for requests in flight");
        let _ = signalled_tx.send(());
    });
    let grace_over = async move {
        match signalled_rx.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            Err(_) => std::future::pending().await,
        }
    };

    tokio::select! {
        result = server => result,
        () = grace_over => {
            tracing::warn!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "requests still in flight after the shutdown grace period; stopping anyway"
            );
            Ok(())
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn wait_for_shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "failed to listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "received shutdown signal"),
        () = terminate => tracing::info!(signal = "SIGTERM", "received shutdown signal"),
    }
}
