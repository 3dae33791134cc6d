//! Logging: the subscriber, request ids and one log line per request.
//!
//! The request line names the matched route, never the URI, because the
//! callback's query string carries the authorization code.

use std::convert::Infallible;
use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{self, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use rand::RngCore;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::error::ErrorSummary;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Maximum length of an incoming request id that is kept.
const MAX_REQUEST_ID_LEN: usize = 64;

/// Installs the global subscriber, writing to stderr from a background
/// thread so request handlers do not wait on the terminal or the pipe
/// (unless its queue of 128,000 lines is full).
/// Fails when a subscriber is already installed. Keep the returned guard
/// until exit: dropping it flushes the lines still queued.
pub fn init(config: &LogConfig) -> Result<WorkerGuard, Box<dyn std::error::Error + Send + Sync>> {
    let filter = EnvFilter::try_new(&config.filter)?;
    // Not lossy: when the queue is full, handlers wait rather than drop lines.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    // Colours only on a terminal, so log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    match config.format {
        LogFormat::Text => builder.try_init()?,
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()?,
    }
    Ok(guard)
}

/// Route layer that copies the matched route into the response, where
/// [`RequestLogLayer`] (which runs before routing) can read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordMatchedPathLayer;

impl<S> Layer<S> for RecordMatchedPathLayer {
    type Service = RecordMatchedPath<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordMatchedPath { inner }
    }
}

/// The service of [`RecordMatchedPathLayer`].
#[derive(Debug, Clone)]
pub struct RecordMatchedPath<S> {
    inner: S,
}

impl<S> Service<Request> for RecordMatchedPath<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RecordMatchedPathFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let matched = request.extensions().get::<MatchedPath>().cloned();
        RecordMatchedPathFuture {
            inner: self.inner.call(request),
            matched,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RecordMatchedPath`].
    pub struct RecordMatchedPathFuture<F> {
        #[pin]
        inner: F,
        matched: Option<MatchedPath>,
    }
}

impl<F> Future for RecordMatchedPathFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(context));
        if let Some(matched) = this.matched.take() {
            response.extensions_mut().insert(matched);
        }
        Poll::Ready(Ok(response))
    }
}

/// Layer that gives every request an id and logs one line when it ends:
/// method, matched route, status, latency and request id. Health checks log
/// at debug level so load-balancer probes do not flood the log.
///
/// A hand-written service rather than `axum::middleware::from_fn`, which
/// boxes its future and the rest of the stack on every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLogLayer;

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog { inner }
    }
}

/// The service of [`RequestLogLayer`].
#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    inner: S,
}

impl<S, B> Service<Request> for RequestLog<S>
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible>,
{
    type Response = http::Response<B>;
    type Error = Infallible;
    type Future = RequestLogFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let request_id = choose_request_id(request.headers().get(&REQUEST_ID_HEADER));
        let header_value =
            HeaderValue::from_str(&request_id).expect("request ids are printable ASCII");
        request
            .headers_mut()
            .insert(REQUEST_ID_HEADER, header_value.clone());
        let method = request.method().clone();
        // The span carries the request id to lines logged inside a handler.
        // The health check and the login redirect log nothing inside, so they
        // skip it: creating and formatting it was about a tenth of their cost.
        let path = request.uri().path();
        let span = if path == "/" || path == "/facebook/login" {
            tracing::Span::none()
        } else {
            tracing::info_span!("request", request_id = %request_id)
        };

        RequestLogFuture {
            inner: self.inner.call(request).instrument(span),
            finish: Some(RequestStart {
                started,
                request_id,
                header_value,
                method,
            }),
        }
    }
}

/// Values taken at the start of a request for its log line.
struct RequestStart {
    started: Instant,
    request_id: String,
    header_value: HeaderValue,
    method: Method,
}

pin_project_lite::pin_project! {
    /// The future of [`RequestLog`]: the inner response, then the log line.
    pub struct RequestLogFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        finish: Option<RequestStart>,
    }
}

impl<F, B> Future for RequestLogFuture<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>>,
{
    type Output = Result<http::Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(context));
        if let Some(start) = this.finish.take() {
            finish_request(&mut response, start);
        }
        Poll::Ready(Ok(response))
    }
}

/// Sets the request id on the response and logs the request line.
fn finish_request<B>(response: &mut http::Response<B>, start: RequestStart) {
    let RequestStart {
        started,
        request_id,
        header_value,
        method,
    } = start;
    response
        .headers_mut()
        .insert(REQUEST_ID_HEADER, header_value);
    let matched = response.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("(no route)", MatchedPath::as_str);
    let status = response.status();
    // Rounded to 0.1 ms and kept a number, so JSON logs can be aggregated.
    let latency_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    let error = response.extensions().get::<ErrorSummary>();
    let error_code = error.map(|error| error.code);
    let detail = error.map(|error| error.detail.as_str());
    let facebook_message = error.and_then(|error| error.facebook_message.as_deref());

    macro_rules! log_line {
        ($level:ident) => {
            tracing::$level!(
                request_id = %request_id,
                method = %method,
                route = %route,
                status = status.as_u16(),
                latency_ms,
                error.code = error_code,
                error.detail = detail,
                facebook.message = facebook_message,
                "request finished"
            )
        };
    }
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        log_line!(error);
    } else if status.is_server_error() {
        log_line!(warn);
    } else if route == "/" && status.is_success() {
        log_line!(debug);
    } else {
        log_line!(info);
    }
}

/// Keeps an incoming request id when it is short and printable, so ids from
/// a proxy carry through; otherwise makes a new random one.
fn choose_request_id(incoming: Option<&HeaderValue>) -> String {
    let valid = incoming.and_then(|value| value.to_str().ok()).filter(|id| {
        !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_LEN
            && id.bytes().all(|byte| byte.is_ascii_graphic())
    });
    match valid {
        Some(id) => id.to_owned(),
        None => {
            let mut random = [0u8; 16];
            rand::rng().fill_bytes(&mut random);
            hex::encode(random)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_kept_when_printable() {
        let incoming = HeaderValue::from_static("abc-123");
        assert_eq!(choose_request_id(Some(&incoming)), "abc-123", "kept");
    }

    #[test]
    fn request_id_replaced_when_unusable() {
        let long = HeaderValue::from_str(&"a".repeat(65)).expect("valid header");
        let spaced = HeaderValue::from_static("a b");
        for (case, incoming) in [
            ("too long", Some(&long)),
            ("space", Some(&spaced)),
            ("absent", None),
        ] {
            let id = choose_request_id(incoming);
            assert_eq!(id.len(), 32, "case {case}: a new 32-character id");
            assert!(
                id.bytes().all(|byte| byte.is_ascii_hexdigit()),
                "case {case}: hex"
            );
        }
    }
}
