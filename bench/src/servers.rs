//! Starts each server, runs the load against it, and collects the figures.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use facebook_oauth::config::Secret;
use facebook_oauth::facebook::login_state::{LoginSigner, cookie_name, unix_now_millis};
use facebook_oauth::sandbox::SandboxConfig;
use hyper::StatusCode;
use rand::RngCore;

use crate::fake_graph::{FakeGraph, ProofPolicy};
use crate::load::{self, LoadResult, LoadSpec, PreparedRequest, Requests};
use crate::{Cli, Cores, READY_TIMEOUT, system};

/// Scopes the codes are issued for: the service's default, which includes
/// the `pages_show_list` permission that `/me/accounts` needs.
const SCOPES: &str = "pages_messaging,pages_show_list";

/// Upper bound on requests in one `/` or `/facebook/login` run, besides its duration.
const MAX_REPEATED_REQUESTS: usize = 20_000_000;

pub const OURS: &str = "facebook-oauth";
pub const BARE: &str = "bare hyper";

/// One measured run.
pub struct Row {
    pub server: String,
    pub route: &'static str,
    pub connections: usize,
    pub result: LoadResult,
    /// CPU time of the server's processes divided by wall time; 1.0 is one CPU busy.
    pub cpu_share: Option<f64>,
    /// TCP connections the fake Graph API accepted during a callback run.
    pub graph_connections: Option<usize>,
}

/// Everything the report prints.
pub struct Summary {
    pub rows: Vec<Row>,
    pub idle_rss_bytes: u64,
    /// Largest resident size sampled every 50 ms during the runs at the highest connection count.
    pub loaded_rss_bytes: u64,
    pub startups: Vec<Duration>,
    pub cores: Option<Cores>,
    pub log_path: PathBuf,
    pub compare_name: Option<String>,
}

/// A server process started by the benchmark, or an address of one started elsewhere.
struct Server {
    name: String,
    address: SocketAddr,
    child: Option<Child>,
}

impl Server {
    fn group(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn stop(mut self) {
        if let Some(child) = self.child.as_mut() {
            system::stop_group(child);
        }
    }
}

/// Runs every measurement in order: start-up, bare hyper, the service, then
/// the comparison server.
pub async fn run_all(cli: &Cli, binary: &Path, cores: Option<Cores>) -> Result<Summary, String> {
    let work_dir = std::env::temp_dir().join("facebook-oauth-bench");
    std::fs::create_dir_all(&work_dir)
        .map_err(|error| format!("failed to create {}: {error}", work_dir.display()))?;
    let log_path = work_dir.join("service.log");
    // Each benchmark run starts a new log; start-ups within the run append to it.
    std::fs::File::create(&log_path)
        .map_err(|error| format!("failed to create {}: {error}", log_path.display()))?;
    let server_core = cores.map(|cores| cores.server);
    let graph = FakeGraph::start(0, ProofPolicy::Required)
        .await
        .map_err(|error| format!("failed to start the fake Graph API: {error}"))?;
    let peak_connections = cli.connections.iter().copied().max().unwrap_or(0);
    let mut rows = Vec::new();

    eprintln!("timing {} start-ups of the service", cli.startup_runs);
    let mut startups = Vec::new();
    for _ in 0..cli.startup_runs {
        let (server, elapsed) =
            start_service(binary, &graph, &work_dir, &log_path, server_core).await?;
        startups.push(elapsed);
        server.stop();
    }

    // Both servers run at once and their measurements alternate, round after
    // round, so a slow spell of the machine hits both alike. Each row is the
    // round with the median requests per second.
    eprintln!(
        "measuring the bare hyper server and the service in {} interleaved rounds",
        cli.rounds
    );
    let bare = start_bare(server_core).await?;
    let (ours, _) = start_service(binary, &graph, &work_dir, &log_path, server_core).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let group = ours
        .group()
        .expect("the service is started by the benchmark");
    let idle_rss_bytes = system::group_rss_bytes(group);
    let mut loaded_rss_bytes = 0;
    let plan = [
        (&bare, "GET /", "/", StatusCode::OK),
        (&ours, "GET /", "/", StatusCode::OK),
        (
            &ours,
            "GET /facebook/login",
            "/facebook/login",
            StatusCode::FOUND,
        ),
    ];
    let mut samples: Vec<Vec<Row>> = Vec::new();
    for round in 0..cli.rounds.max(1) {
        eprintln!(" round {} of {}", round + 1, cli.rounds.max(1));
        let mut index = 0;
        for (server, route, path, status) in plan {
            for &connections in &cli.connections {
                let spec = repeat_spec(cli, server, path, status, connections);
                let (row, rss) = measure_repeated(server, route, spec).await;
                if std::ptr::eq(server, &ours) && connections == peak_connections {
                    loaded_rss_bytes = loaded_rss_bytes.max(rss);
                }
                if round == 0 {
                    samples.push(Vec::new());
                }
                samples[index].push(row);
                index += 1;
            }
        }
    }
    rows.extend(samples.into_iter().filter_map(take_median));
    bare.stop();

    let redirect_uri = format!("http://{}/facebook/callback", ours.address);
    for &connections in &cli.connections {
        let requests = our_callbacks(&graph, &redirect_uri, cli.callbacks);
        let (row, rss) = measure_callbacks(cli, &ours, &graph, requests, connections).await;
        if connections == peak_connections {
            loaded_rss_bytes = loaded_rss_bytes.max(rss);
        }
        rows.push(row);
    }
    ours.stop();

    let compare_name = match comparison(cli, server_core).await? {
        Some((server, graph)) => {
            eprintln!("measuring {}", server.name);
            for &connections in &cli.connections {
                let spec = repeat_spec(cli, &server, "/", StatusCode::OK, connections);
                rows.push(measure_repeated(&server, "GET /", spec).await.0);
            }
            let redirect_uri = format!("http://{}/facebook/callback", server.address);
            for &connections in &cli.connections {
                let requests = code_only_callbacks(&graph, &redirect_uri, cli.callbacks);
                rows.push(
                    measure_callbacks(cli, &server, &graph, requests, connections)
                        .await
                        .0,
                );
            }
            server.stop();
            Some(cli.compare_name.clone())
        }
        None => None,
    };

    Ok(Summary {
        rows,
        idle_rss_bytes,
        loaded_rss_bytes,
        startups,
        cores,
        log_path,
        compare_name,
    })
}

/// Returns the row with the median requests per second (the upper one of
/// the middle two for an even count).
fn take_median(mut rounds: Vec<Row>) -> Option<Row> {
    rounds.sort_by(|left, right| {
        left.result
            .requests_per_second()
            .total_cmp(&right.result.requests_per_second())
    });
    let middle = rounds.len() / 2;
    rounds.into_iter().nth(middle)
}

fn repeat_spec(
    cli: &Cli,
    server: &Server,
    path: &str,
    expected_status: StatusCode,
    connections: usize,
) -> LoadSpec {
    LoadSpec {
        address: server.address,
        connections,
        requests: Requests::Repeat(PreparedRequest {
            path: path.to_owned(),
            cookie: None,
        }),
        expected_status,
        max_requests: MAX_REPEATED_REQUESTS,
        max_duration: Duration::from_secs(cli.duration_secs),
    }
}

/// Warms up for one second, then measures. Returns the row and the largest
/// resident size sampled during the measured part.
async fn measure_repeated(server: &Server, route: &'static str, spec: LoadSpec) -> (Row, u64) {
    load::run(warm_up_only(&spec)).await;
    measure(server, route, spec, None).await
}

fn warm_up_only(spec: &LoadSpec) -> LoadSpec {
    LoadSpec {
        address: spec.address,
        connections: spec.connections,
        requests: match &spec.requests {
            Requests::Repeat(request) => Requests::Repeat(request.clone()),
            Requests::Each(_) => unreachable!("only repeated requests are warmed up"),
        },
        expected_status: spec.expected_status,
        max_requests: spec.max_requests,
        max_duration: Duration::from_secs(1),
    }
}

async fn measure_callbacks(
    cli: &Cli,
    server: &Server,
    graph: &FakeGraph,
    requests: Vec<PreparedRequest>,
    connections: usize,
) -> (Row, u64) {
    let spec = LoadSpec {
        address: server.address,
        connections,
        max_requests: requests.len(),
        requests: Requests::Each(requests),
        expected_status: StatusCode::OK,
        max_duration: Duration::from_secs(cli.callback_max_secs),
    };
    measure(server, "GET /facebook/callback", spec, Some(graph)).await
}

/// Runs `spec` while sampling the server's CPU time and resident memory.
async fn measure(
    server: &Server,
    route: &'static str,
    spec: LoadSpec,
    graph: Option<&FakeGraph>,
) -> (Row, u64) {
    let connections = spec.connections;
    eprintln!("  {} {route} at {connections} connections", server.name);
    let group = server.group();
    let cpu_before = group.map(system::group_cpu_time);
    let graph_before = graph.map(FakeGraph::accepted_connections);

    let max_rss = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = group.map(|group| {
        let max_rss = Arc::clone(&max_rss);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                max_rss.fetch_max(system::group_rss_bytes(group), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    });

    let result = load::run(spec).await;

    done.store(true, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        let _ = sampler.await;
    }
    let cpu_share = group.zip(cpu_before).map(|(group, before)| {
        let used = system::group_cpu_time(group).saturating_sub(before);
        used.as_secs_f64() / result.elapsed.as_secs_f64()
    });
    let graph_connections = graph
        .zip(graph_before)
        .map(|(graph, before)| graph.accepted_connections() - before);
    let row = Row {
        server: server.name.clone(),
        route,
        connections,
        result,
        cpu_share,
        graph_connections,
    };
    (row, max_rss.load(Ordering::Relaxed))
}

/// Prepares callbacks as a browser coming back from the dialog sends them:
/// a fresh code, the state, and the signed login cookie for that state.
fn our_callbacks(graph: &FakeGraph, redirect_uri: &str, count: usize) -> Vec<PreparedRequest> {
    let signer = LoginSigner::new(
        &Secret::new(SandboxConfig::DEFAULT_APP_SECRET),
        redirect_uri,
    );
    let started_at = unix_now_millis();
    (0..count)
        .map(|_| {
            let code = graph.sandbox.issue_code(redirect_uri, SCOPES);
            let state = random_state();
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("code", &code)
                .append_pair("state", &state)
                .finish();
            let cookie = format!(
                "{}={}",
                cookie_name(&state),
                signer.sign_cookie_value(&state, started_at)
            );
            PreparedRequest {
                path: format!("/facebook/callback?{query}"),
                cookie: Some(cookie),
            }
        })
        .collect()
}

/// Prepares callbacks with only a `code`, which is all the original Python
/// service reads.
fn code_only_callbacks(
    graph: &FakeGraph,
    redirect_uri: &str,
    count: usize,
) -> Vec<PreparedRequest> {
    (0..count)
        .map(|_| {
            let code = graph.sandbox.issue_code(redirect_uri, SCOPES);
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("code", &code)
                .finish();
            PreparedRequest {
                path: format!("/facebook/callback?{query}"),
                cookie: None,
            }
        })
        .collect()
}

/// Returns 16 random bytes as hex, the same entropy as the service's own states.
fn random_state() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Starts the release binary with logging at its default level and returns
/// it with the time from spawn to its first `200` on `/`.
async fn start_service(
    binary: &Path,
    graph: &FakeGraph,
    work_dir: &Path,
    log_path: &Path,
    core: Option<usize>,
) -> Result<(Server, Duration), String> {
    let address = free_address()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|error| format!("failed to open {}: {error}", log_path.display()))?;

    let mut command = Command::new(binary);
    // Settings the benchmark does not set are removed, so a developer's
    // environment cannot change what is measured. The working folder has no
    // `.env` file for the same reason.
    for name in [
        "FACEBOOK_SCOPES",
        "FACEBOOK_GRAPH_VERSION",
        "FACEBOOK_PAGE_FIELDS",
        "FACEBOOK_TIMEOUT_SECS",
        "CORS_ALLOWED_ORIGINS",
        "LOG_FORMAT",
        "SANDBOX_PAGES",
    ] {
        command.env_remove(name);
    }
    command
        .env("FACEBOOK_APP_ID", SandboxConfig::DEFAULT_APP_ID)
        .env("FACEBOOK_APP_SECRET", SandboxConfig::DEFAULT_APP_SECRET)
        .env(
            "FACEBOOK_REDIRECT_URI",
            format!("http://{address}/facebook/callback"),
        )
        .env("FACEBOOK_DIALOG_URL", graph.dialog_url())
        .env("FACEBOOK_GRAPH_URL", graph.graph_url())
        .env("HOST", address.ip().to_string())
        .env("PORT", address.port().to_string())
        .env("RUST_LOG", "info")
        .current_dir(work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);

    let started = Instant::now();
    let child = system::spawn_group(&mut command, core)
        .map_err(|error| format!("failed to start {}: {error}", binary.display()))?;
    let mut server = Server {
        name: crate::servers::OURS.to_owned(),
        address,
        child: Some(child),
    };
    let elapsed = wait_ready(&mut server, started).await?;
    Ok((server, elapsed))
}

async fn start_bare(core: Option<usize>) -> Result<Server, String> {
    let address = free_address()?;
    let exe = std::env::current_exe()
        .map_err(|error| format!("failed to find the benchmark's own binary: {error}"))?;
    let mut command = Command::new(exe);
    command
        .arg("--serve-bare")
        .arg(address.port().to_string())
        .stdin(Stdio::null());
    let started = Instant::now();
    let child = system::spawn_group(&mut command, core)
        .map_err(|error| format!("failed to start the bare hyper server: {error}"))?;
    let mut server = Server {
        name: BARE.to_owned(),
        address,
        child: Some(child),
    };
    wait_ready(&mut server, started).await?;
    Ok(server)
}

/// Starts or finds the comparison server, with its own fake Graph API that
/// does not require `appsecret_proof`.
async fn comparison(cli: &Cli, core: Option<usize>) -> Result<Option<(Server, FakeGraph)>, String> {
    if cli.compare_cmd.is_none() && cli.compare_addr.is_none() {
        return Ok(None);
    }
    let graph = FakeGraph::start(cli.compare_graph_port, ProofPolicy::Optional)
        .await
        .map_err(|error| format!("failed to start the comparison's fake Graph API: {error}"))?;

    if let Some(address) = cli.compare_addr {
        let mut server = Server {
            name: cli.compare_name.clone(),
            address,
            child: None,
        };
        eprintln!(
            "using the comparison server at {address}; it must run with \
             FACEBOOK_APP_ID={} FACEBOOK_APP_SECRET={} \
             FACEBOOK_REDIRECT_URI=http://{address}/facebook/callback GRAPH_BASE={}",
            SandboxConfig::DEFAULT_APP_ID,
            SandboxConfig::DEFAULT_APP_SECRET,
            graph.graph_url()
        );
        wait_ready(&mut server, Instant::now()).await?;
        return Ok(Some((server, graph)));
    }

    let template = cli.compare_cmd.as_deref().unwrap_or_default();
    let address = free_address()?;
    let port = address.port().to_string();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(template.replace("{port}", &port))
        .env("PORT", &port)
        .env("HOST", address.ip().to_string())
        .env("FACEBOOK_APP_ID", SandboxConfig::DEFAULT_APP_ID)
        .env("FACEBOOK_APP_SECRET", SandboxConfig::DEFAULT_APP_SECRET)
        .env(
            "FACEBOOK_REDIRECT_URI",
            format!("http://{address}/facebook/callback"),
        )
        .env("FACEBOOK_GRAPH_URL", graph.graph_url())
        .env("GRAPH_BASE", graph.graph_url())
        .stdin(Stdio::null());
    let child = system::spawn_group(&mut command, core)
        .map_err(|error| format!("failed to run the comparison command: {error}"))?;
    let mut server = Server {
        name: cli.compare_name.clone(),
        address,
        child: Some(child),
    };
    wait_ready(&mut server, Instant::now()).await?;
    Ok(Some((server, graph)))
}

/// Polls `GET /` every millisecond until it returns `200`, and returns the
/// time since `started`.
async fn wait_ready(server: &mut Server, started: Instant) -> Result<Duration, String> {
    while started.elapsed() < READY_TIMEOUT {
        if let Ok(StatusCode::OK) = load::probe(server.address, "/").await {
            return Ok(started.elapsed());
        }
        if let Some(child) = server.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{} exited with {status} before answering on {}",
                    server.name, server.address
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err(format!(
        "{} did not answer 200 on http://{}/ within {READY_TIMEOUT:?}",
        server.name, server.address
    ))
}

/// Returns a loopback address with a port that was free a moment ago.
fn free_address() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| format!("failed to find a free port: {error}"))?;
    listener
        .local_addr()
        .map_err(|error| format!("failed to read a free port: {error}"))
}
