//! A closed-loop HTTP/1.1 load generator: each connection sends one GET,
//! reads the whole response, and sends the next, with keep-alive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{COOKIE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request that takes longer than this counts as an error and its connection is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One GET request: path with query, and an optional `Cookie` header.
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    pub path: String,
    pub cookie: Option<String>,
}

/// The requests that the connections send.
pub enum Requests {
    /// The same request every time, until the run's time or count limit.
    Repeat(PreparedRequest),
    /// Each request once, in order; the run ends when all were sent or time is up.
    Each(Vec<PreparedRequest>),
}

/// One measured run.
pub struct LoadSpec {
    pub address: SocketAddr,
    pub connections: usize,
    pub requests: Requests,
    pub expected_status: StatusCode,
    /// Upper bound on requests for [`Requests::Repeat`]. [`Requests::Each`] sends its list once.
    pub max_requests: usize,
    pub max_duration: Duration,
}

/// Outcome of a run. Latencies are of responses with the expected status
/// only. Requests cut off by the end of the run count neither as responses
/// nor as errors.
pub struct LoadResult {
    pub succeeded: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Sorted, in microseconds.
    latencies_us: Vec<u32>,
    pub first_error: Option<String>,
}

impl LoadResult {
    pub fn requests_per_second(&self) -> f64 {
        self.succeeded as f64 / self.elapsed.as_secs_f64()
    }

    /// Returns the latency at `quantile` (0 to 1) in milliseconds, nearest-rank.
    pub fn latency_ms(&self, quantile: f64) -> Option<f64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let rank = (quantile * self.latencies_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        Some(f64::from(self.latencies_us[index]) / 1000.0)
    }
}

struct Shared {
    spec: LoadSpec,
    host: String,
    next_index: AtomicUsize,
    deadline: Instant,
}

impl Shared {
    fn request_limit(&self) -> usize {
        match &self.spec.requests {
            Requests::Repeat(_) => self.spec.max_requests,
            Requests::Each(list) => list.len(),
        }
    }

    fn request_at(&self, index: usize) -> &PreparedRequest {
        match &self.spec.requests {
            Requests::Repeat(request) => request,
            Requests::Each(list) => &list[index],
        }
    }
}

#[derive(Default)]
struct ConnectionStats {
    latencies_us: Vec<u32>,
    errors: usize,
    first_error: Option<String>,
}

impl ConnectionStats {
    fn record_error(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }
}

/// Runs the load described by `spec` on the current Tokio runtime.
pub async fn run(spec: LoadSpec) -> LoadResult {
    let connections = spec.connections;
    let shared = Arc::new(Shared {
        host: spec.address.to_string(),
        deadline: Instant::now() + spec.max_duration,
        next_index: AtomicUsize::new(0),
        spec,
    });

    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(drive_connection(Arc::clone(&shared))))
        .collect();
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let stats = task.await.expect("load connection task panicked");
        latencies_us.extend(stats.latencies_us);
        errors += stats.errors;
        first_error = first_error.or(stats.first_error);
    }
    let elapsed = started.elapsed();

    latencies_us.sort_unstable();
    LoadResult {
        succeeded: latencies_us.len(),
        errors,
        elapsed,
        latencies_us,
        first_error,
    }
}

async fn drive_connection(shared: Arc<Shared>) -> ConnectionStats {
    let mut stats = ConnectionStats::default();
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    let limit = shared.request_limit();

    while Instant::now() < shared.deadline {
        let index = shared.next_index.fetch_add(1, Ordering::Relaxed);
        if index >= limit {
            break;
        }

        // A connection the server closed between requests is replaced
        // without counting an error; one that fails mid-request is not.
        if sender.as_ref().is_none_or(SendRequest::is_closed) {
            match connect(shared.spec.address).await {
                Ok(new_sender) => sender = Some(new_sender),
                Err(error) => {
                    stats.record_error(format!("connect failed: {error}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(active) = sender.as_mut() else {
            continue;
        };

        let request = shared.request_at(index);
        let started = Instant::now();
        // A request still in flight when the run ends is dropped uncounted,
        // so the run lasts its duration and no longer.
        let cut_off = (started + REQUEST_TIMEOUT).min(shared.deadline);
        let outcome =
            tokio::time::timeout_at(cut_off.into(), send(active, &shared.host, request)).await;
        if outcome.is_err() && Instant::now() >= shared.deadline {
            break;
        }
        match outcome {
            Ok(Ok(status)) if status == shared.spec.expected_status => {
                let micros = started.elapsed().as_micros();
                stats
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Ok(Ok(status)) => {
                stats.record_error(format!("status {status} on {}", request.path));
            }
            Ok(Err(error)) => {
                stats.record_error(format!("request failed: {error}"));
                sender = None;
            }
            Err(_) => {
                stats.record_error(format!("no response within {REQUEST_TIMEOUT:?}"));
                sender = None;
            }
        }
    }
    stats
}

async fn connect(address: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|error| error.to_string())?;
    stream
        .set_nodelay(true)
        .map_err(|error| error.to_string())?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| error.to_string())?;
    tokio::spawn(async move {
        // The error, if any, reaches the next `send_request` on this connection.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one GET and reads the whole body, so latency covers the full response.
async fn send(
    sender: &mut SendRequest<Empty<Bytes>>,
    host: &str,
    prepared: &PreparedRequest,
) -> Result<StatusCode, hyper::Error> {
    let mut builder = Request::get(prepared.path.as_str()).header(HOST, host);
    if let Some(cookie) = &prepared.cookie {
        builder = builder.header(COOKIE, cookie);
    }
    let request = builder
        .body(Empty::new())
        .expect("paths and cookies are prepared as valid header values");

    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status)
}

/// Sends one `GET path` on a new connection and returns the status, for
/// readiness checks.
pub async fn probe(address: SocketAddr, path: &str) -> Result<StatusCode, String> {
    let mut sender = connect(address).await?;
    let request = PreparedRequest {
        path: path.to_owned(),
        cookie: None,
    };
    send(&mut sender, &address.to_string(), &request)
        .await
        .map_err(|error| error.to_string())
}
