//! Starts the service: reads the configuration, binds, and serves until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use facebook_oauth::cli::Cli;
use facebook_oauth::config::{Config, ConfigError, FacebookConfig, Mode, REAL_APP_VARIABLES};
use facebook_oauth::sandbox::{Sandbox, SandboxConfig};
use facebook_oauth::{build_app, serve, server, telemetry};

/// Exit status for an invalid configuration (EX_CONFIG in sysexits.h).
const EXIT_CONFIG: u8 = 78;

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = dotenvy::dotenv() {
        if !error.not_found() {
            eprintln!("invalid .env file: {error}; fix the line it names or remove the file");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    let cli = Cli::parse();
    let mode = if cli.sandbox {
        Mode::Sandbox
    } else {
        Mode::Facebook
    };

    let mut config = match Config::from_env(mode) {
        Ok(config) => config,
        Err(error) => return report_config_error(&error),
    };
    // Held until main returns, so queued log lines are written before exit.
    let _log_guard = match telemetry::init(&config.log) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("failed to start logging: {error}");
            return ExitCode::FAILURE;
        }
    };

    let address = SocketAddr::new(config.host, config.port);
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%address, %error, "failed to listen; set HOST and PORT to a free address");
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.local_addr().unwrap_or(address);

    if !cli.sandbox && cli.sandbox_pages.is_some() {
        tracing::warn!("--sandbox-pages (or SANDBOX_PAGES) is ignored without --sandbox");
    }
    let page_count = cli
        .sandbox_pages
        .map_or(SandboxConfig::DEFAULT_PAGE_COUNT, |count| count as usize);
    let sandbox = cli
        .sandbox
        .then(|| start_sandbox(&mut config, bound, page_count));
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }

    let app = match build_app(&config, sandbox) {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(error = %error.without_url(), "failed to build the HTTP client");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        address = %bound,
        graph_version = %config.facebook.graph_version,
        "listening"
    );
    match serve(listener, app, server::wait_for_shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

fn report_config_error(error: &ConfigError) -> ExitCode {
    eprintln!("{error}");
    ExitCode::from(EXIT_CONFIG)
}

/// Points the Facebook settings at the sandbox on the bound port and prints
/// the URL to open.
fn start_sandbox(config: &mut Config, bound: SocketAddr, page_count: usize) -> Sandbox {
    for name in REAL_APP_VARIABLES {
        if std::env::var_os(name).is_some_and(|value| !value.is_empty()) {
            tracing::warn!("{name} is set but ignored, because --sandbox uses its own fake app");
        }
    }
    let port = bound.port();
    config.facebook = FacebookConfig {
        scopes: config.facebook.scopes.clone(),
        graph_version: config.facebook.graph_version.clone(),
        page_fields: config.facebook.page_fields.clone(),
        timeout: config.facebook.timeout,
        max_in_flight: config.facebook.max_in_flight,
        ..FacebookConfig::sandbox(port)
    };
    let sandbox = Sandbox::new(SandboxConfig {
        page_count,
        ..SandboxConfig::with_redirect_uri(config.facebook.redirect_uri.clone())
    });
    eprintln!(
        "\n  SANDBOX MODE: no real Facebook is contacted; logins go to a fake Facebook on this server.\
         \n  Open http://localhost:{port}/facebook/login in a browser (use localhost, not 127.0.0.1).\
         \n  Sandbox Pages: {page_count}.\n"
    );
    sandbox
}
