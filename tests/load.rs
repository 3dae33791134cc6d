//! Load and faults, all on loopback: many concurrent logins, a hung
//! Facebook, and SIGTERM with callbacks in flight. These tests assert
//! outcomes, never speed, and print their figures (run with --nocapture).

#[path = "api/helpers.rs"]
mod helpers;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use facebook_oauth::config::Secret;
use facebook_oauth::facebook::login_state::{LoginSigner, cookie_name, unix_now_millis};
use facebook_oauth::sandbox::{Endpoint, Fault, Sandbox, SandboxConfig};
use helpers::{TestOptions, location, new_client_with_jar, query_param, spawn_app, spawn_sandbox};
use reqwest::header::COOKIE;
use tokio::task::JoinSet;

/// The real service binary, pointed at an in-test sandbox; killed when dropped.
struct ServiceProcess {
    child: Child,
    port: u16,
    redirect_uri: String,
}

impl ServiceProcess {
    /// Starts the binary on a free port with Graph and the dialog on the
    /// sandbox at `sandbox_address`, and waits for its "listening" line.
    fn start(sandbox_address: SocketAddr, port: u16, extra: &[(&str, &str)]) -> Self {
        let redirect_uri = redirect_uri_for(port);
        let mut child = Command::new(env!("CARGO_BIN_EXE_facebook-oauth"))
            .env_clear()
            .env("FACEBOOK_APP_ID", SandboxConfig::DEFAULT_APP_ID)
            .env("FACEBOOK_APP_SECRET", SandboxConfig::DEFAULT_APP_SECRET)
            .env("FACEBOOK_REDIRECT_URI", &redirect_uri)
            .env(
                "FACEBOOK_DIALOG_URL",
                format!("http://{sandbox_address}/sandbox"),
            )
            .env(
                "FACEBOOK_GRAPH_URL",
                format!("http://{sandbox_address}/sandbox/graph"),
            )
            .env("PORT", port.to_string())
            .envs(extra.iter().copied())
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let (listening_tx, listening_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = listening_tx.send(());
                }
            }
        });
        let started = listening_rx.recv_timeout(Duration::from_secs(30)).is_ok();
        let process = Self {
            child,
            port,
            redirect_uri,
        };
        assert!(started, "the service did not log that it is listening");
        process
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Returns the process's resident memory in bytes, from /proc/PID/statm.
    fn resident_bytes(&self) -> u64 {
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", self.child.id()))
            .expect("/proc/PID/statm");
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|field| field.parse().ok())
            .expect("resident pages");
        pages * 4096
    }

    /// Returns a cookie header and state for a login started now, as
    /// `/facebook/login` would set them.
    fn prepare_login(&self, index: usize) -> (String, String) {
        let signer = LoginSigner::new(
            &Secret::new(SandboxConfig::DEFAULT_APP_SECRET),
            &self.redirect_uri,
        );
        let state = format!("state-for-load-test-{index:05}");
        let cookie = format!(
            "{}={}",
            cookie_name(&state),
            signer.sign_cookie_value(&state, unix_now_millis())
        );
        (state, cookie)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn redirect_uri_for(port: u16) -> String {
    format!("http://127.0.0.1:{port}/facebook/callback")
}

/// Starts a sandbox that accepts the redirect URI of a service on `port`.
async fn start_sandbox_for(port: u16) -> (Sandbox, SocketAddr) {
    let sandbox = Sandbox::new(SandboxConfig::with_redirect_uri(redirect_uri_for(port)));
    let address = spawn_sandbox(&sandbox).await;
    (sandbox, address)
}

/// Starts `count` callbacks at once, each with a login prepared for it and a
/// fresh code, and returns their tasks.
fn spawn_callbacks(
    service: &ServiceProcess,
    sandbox: &Sandbox,
    first_index: usize,
    count: usize,
) -> JoinSet<Result<u16, String>> {
    let mut callbacks = JoinSet::new();
    for index in first_index..first_index + count {
        let (state, cookie) = service.prepare_login(index);
        let code = sandbox.issue_code(&service.redirect_uri, "pages_show_list");
        let url = service.url("/facebook/callback");
        callbacks.spawn(send_callback(url, state, code, cookie));
    }
    callbacks
}

/// Sends one callback with a prepared cookie and returns its status, or the
/// transport error.
async fn send_callback(
    url: String,
    state: String,
    code: String,
    cookie: String,
) -> Result<u16, String> {
    reqwest::Client::new()
        .get(url)
        .query(&[("code", code), ("state", state)])
        .header(COOKIE, cookie)
        .send()
        .await
        .map(|response| response.status().as_u16())
        .map_err(|error| error.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_logins_succeed() {
    let app = spawn_app(TestOptions::default()).await;
    let started = Instant::now();

    let mut logins = JoinSet::new();
    for _ in 0..500 {
        let (client, _) = new_client_with_jar();
        let login_url = app.url("/facebook/login");
        let callback_url = app.url("/facebook/callback");
        let sandbox = app.sandbox.clone();
        let redirect_uri = app.config.facebook.redirect_uri.clone();
        let scopes = app.config.facebook.scopes.clone();
        logins.spawn(async move {
            let login = client.get(login_url).send().await.expect("login");
            let state = query_param(&location(login.headers()), "state").expect("state");
            let code = sandbox.issue_code(&redirect_uri, &scopes);
            let response = client
                .get(callback_url)
                .query(&[("code", code), ("state", state)])
                .send()
                .await
                .expect("callback");
            let status = response.status().as_u16();
            let body = helpers::json_body(response).await;
            (status, body["pages"]["data"].as_array().map_or(0, Vec::len))
        });
    }
    let outcomes = logins.join_all().await;

    let succeeded = outcomes
        .iter()
        .filter(|(status, pages)| *status == 200 && *pages == 3)
        .count();
    eprintln!(
        "500 concurrent logins: {succeeded} succeeded with every Page in {:?}; \
         {} code exchanges, {} Pages requests reached the sandbox",
        started.elapsed(),
        app.sandbox.request_count(Endpoint::TokenExchange),
        app.sandbox.request_count(Endpoint::Accounts),
    );
    assert_eq!(succeeded, 500, "every login succeeds: {outcomes:?}");
    assert_eq!(
        app.sandbox.request_count(Endpoint::TokenExchange),
        500,
        "one exchange each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_facebook_keeps_service_healthy() {
    let port = free_port();
    let (sandbox, sandbox_address) = start_sandbox_for(port).await;
    let service = ServiceProcess::start(
        sandbox_address,
        port,
        &[
            ("FACEBOOK_TIMEOUT_SECS", "2"),
            ("FACEBOOK_MAX_IN_FLIGHT", "100"),
        ],
    );
    // Warm up the allocator and the Graph connection pool before the first reading.
    for index in 0..50 {
        let (state, cookie) = service.prepare_login(index);
        let code = sandbox.issue_code(&service.redirect_uri, "pages_show_list");
        let status = send_callback(service.url("/facebook/callback"), state, code, cookie).await;
        assert_eq!(status, Ok(200), "warm-up login");
    }
    let memory_before = service.resident_bytes();
    sandbox.inject(
        Endpoint::TokenExchange,
        Fault::Delay(Duration::from_secs(60)),
    );

    // Three rounds, because glibc's allocator keeps freed memory in its
    // arenas. The first rounds grow resident memory to a plateau (8 to
    // 11 MiB over the start on a 2-core test machine), and a leak would keep
    // growing it round after round.
    let mut memory_after_rounds = Vec::new();
    for round in 0..3 {
        let callbacks = spawn_callbacks(&service, &sandbox, 1000 * (round + 1), 200);
        let health_client = reqwest::Client::new();
        let mut health_checks = 0;
        let mut slowest_health = Duration::ZERO;
        let mut memory_peak = 0;
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            let sent = Instant::now();
            let health = health_client
                .get(service.url("/"))
                .send()
                .await
                .expect("health check");
            assert_eq!(
                health.status(),
                200,
                "round {round}: the health check answers while Facebook hangs"
            );
            slowest_health = slowest_health.max(sent.elapsed());
            health_checks += 1;
            memory_peak = memory_peak.max(service.resident_bytes());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let statuses = callbacks.join_all().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let memory_after = service.resident_bytes();
        memory_after_rounds.push(memory_after);

        let timed_out = statuses.iter().filter(|status| **status == Ok(504)).count();
        let busy = statuses.iter().filter(|status| **status == Ok(503)).count();
        let mebibytes = |bytes: u64| bytes as f64 / 1_048_576.0;
        eprintln!(
            "hung Facebook, round {round}: 200 callbacks ended with {timed_out} x 504 and \
             {busy} x 503; {health_checks} health checks, slowest {slowest_health:?}; service \
             resident memory {:.1} MiB at start, {:.1} MiB peak, {:.1} MiB after",
            mebibytes(memory_before),
            mebibytes(memory_peak),
            mebibytes(memory_after),
        );
        assert_eq!(
            timed_out + busy,
            200,
            "round {round}: every callback ended with 504 or 503: {statuses:?}"
        );
        assert_eq!(
            timed_out, 100,
            "round {round}: exactly the in-flight limit reached Facebook"
        );
        assert!(
            health_checks >= 10,
            "round {round}: health checks kept answering: {health_checks}"
        );
    }
    assert!(
        memory_after_rounds[2] <= memory_after_rounds[1] + 4 * 1024 * 1024,
        "a third hang does not grow memory further: {memory_after_rounds:?} bytes"
    );
    assert!(
        memory_after_rounds[1] < memory_before + 16 * 1024 * 1024,
        "memory stays near its start: {memory_before} then {memory_after_rounds:?} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_completes_callbacks_in_flight() {
    let port = free_port();
    let (sandbox, sandbox_address) = start_sandbox_for(port).await;
    sandbox.inject(
        Endpoint::TokenExchange,
        Fault::Delay(Duration::from_secs(2)),
    );
    let mut service = ServiceProcess::start(sandbox_address, port, &[]);

    let callbacks = spawn_callbacks(&service, &sandbox, 0, 100);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sandbox.request_count(Endpoint::TokenExchange) < 100 {
        assert!(
            Instant::now() < deadline,
            "the callbacks did not all reach Facebook"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "SIGTERM sent");
    let outcomes = callbacks.join_all().await;
    let exit = loop {
        if let Some(status) = service.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "the service did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let completed = outcomes
        .iter()
        .filter(|outcome| **outcome == Ok(200))
        .count();
    eprintln!(
        "SIGTERM with 100 callbacks in flight: {completed} completed with 200, exit status \
         {:?} after {:?}",
        exit.code(),
        signalled.elapsed()
    );
    assert_eq!(
        completed, 100,
        "every callback in flight completes: {outcomes:?}"
    );
    assert_eq!(exit.code(), Some(0), "exit status 0 after SIGTERM");
}
