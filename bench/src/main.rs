//! Load benchmark of the facebook-oauth service. Builds the release binary,
//! starts it on loopback against a fake Graph API, and prints throughput,
//! latency, memory, start-up time and Graph connection reuse beside a bare
//! hyper server and, optionally, a comparison server. BENCHMARKS.md in the
//! repository root describes the method and records a run.

mod bare;
mod fake_graph;
mod load;
mod report;
mod servers;
mod system;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Load benchmark of facebook-oauth on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Cli {
    /// Seconds of each measured `/` and `/facebook/login` run (after a 1-second warm-up).
    #[arg(long, default_value_t = 5)]
    duration_secs: u64,

    /// Rounds of the `/` and `/facebook/login` measurements. The bare server
    /// and the service alternate within each round, and the table shows each
    /// row's median round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,

    /// Callbacks per callback run. Each needs its own code and login cookie, prepared in advance.
    #[arg(long, default_value_t = 10_000)]
    callbacks: usize,

    /// Maximum seconds of one callback run, so that a slow server still finishes.
    #[arg(long, default_value_t = 30)]
    callback_max_secs: u64,

    /// Numbers of concurrent connections, comma-separated. Each route runs at each of them.
    #[arg(long, value_delimiter = ',', default_values_t = [32, 512])]
    connections: Vec<usize>,

    /// Shell command that starts a comparison server, with `{port}` replaced
    /// by the port to listen on. Its environment also has PORT, HOST,
    /// FACEBOOK_APP_ID, FACEBOOK_APP_SECRET, FACEBOOK_REDIRECT_URI,
    /// FACEBOOK_GRAPH_URL and GRAPH_BASE.
    #[arg(long, conflicts_with = "compare_addr")]
    compare_cmd: Option<String>,

    /// Address of a comparison server that is already running. It must use
    /// the settings the benchmark prints, with --compare-graph-port fixed.
    #[arg(long)]
    compare_addr: Option<SocketAddr>,

    /// Name of the comparison server in the table.
    #[arg(long, default_value = "comparison")]
    compare_name: String,

    /// Port of the comparison server's fake Graph API; 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    compare_graph_port: u16,

    /// Start-ups timed for the start-up figure.
    #[arg(long, default_value_t = 5)]
    startup_runs: usize,

    /// Do not pin servers to CPU 0 and the load generator to CPU 1.
    #[arg(long)]
    no_pin: bool,

    /// Serve the bare hyper baseline on this port (the benchmark starts itself with it).
    #[arg(long, hide = true)]
    serve_bare: Option<u16>,
}

/// CPUs for the servers and for the load generator with the fake Graph API.
#[derive(Clone, Copy, Debug)]
pub struct Cores {
    pub server: usize,
    pub load: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(port) = cli.serve_bare {
        return match bare::serve(port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bare hyper server failed on port {port}: {error}");
                ExitCode::FAILURE
            }
        };
    }

    // Built before pinning, so the build may use every CPU.
    let binary = match build_service() {
        Ok(binary) => binary,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    system::raise_open_file_limit();
    let cores = choose_cores(cli.no_pin);
    if let Some(cores) = cores {
        if let Err(error) = system::pin_current_process(cores.load) {
            eprintln!(
                "failed to pin the load generator to CPU {}: {error}",
                cores.load
            );
            return ExitCode::FAILURE;
        }
    }

    // One runtime for the load generator and the fake Graph API. Pinned, it
    // has one worker, because Tokio sizes itself from the CPU affinity mask.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("failed to start the Tokio runtime");
    match runtime.block_on(servers::run_all(&cli, &binary, cores)) {
        Ok(summary) => {
            report::print(&summary, &cli);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Pins servers and load to different CPUs when there are at least two.
fn choose_cores(no_pin: bool) -> Option<Cores> {
    let available = std::thread::available_parallelism().map_or(1, usize::from);
    if no_pin || available < 2 {
        return None;
    }
    Some(Cores { server: 0, load: 1 })
}

/// Runs `cargo build --release` for the service and returns its binary's path.
fn build_service() -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the benchmark crate sits inside the service's repository")
        .to_path_buf();
    // `cargo run` sets CARGO to the cargo that started the benchmark.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "building the service: cargo build --release (in {})",
        root.display()
    );
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--bin", "facebook-oauth"])
        .current_dir(&root)
        .status()
        .map_err(|error| format!("failed to run cargo: {error}"))?;
    if !status.success() {
        return Err(format!("cargo build --release failed with {status}"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release").join("facebook-oauth"))
}

/// How long to wait for a server's first `200` on `/` before giving up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
