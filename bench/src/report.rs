//! Prints the results table and checks the targets listed in BENCHMARKS.md.

use std::time::Duration;

use crate::Cli;
use crate::servers::{BARE, OURS, Row, Summary};

/// Idle resident memory target, in bytes (15 MB, decimal).
const IDLE_RSS_TARGET: u64 = 15_000_000;
/// Start-up target: process start to the first `200` on `/`.
const STARTUP_TARGET: Duration = Duration::from_millis(100);
/// Minimum share of the bare hyper server's requests per second.
const HEALTH_RATIO_TARGET: f64 = 0.85;
const LOGIN_RATIO_TARGET: f64 = 0.6;
/// Minimum callback throughput as a multiple of the comparison server's.
const CALLBACK_SPEEDUP_TARGET: f64 = 10.0;
/// Maximum Graph connections opened in a callback run, as a multiple of its concurrency.
const GRAPH_CONNECTIONS_FACTOR: usize = 2;

pub fn print(summary: &Summary, cli: &Cli) {
    println!();
    println!(
        "{:<18} {:<24} {:>5} {:>9} {:>6} {:>9} {:>8} {:>8} {:>7} {:>7}",
        "server",
        "route",
        "conns",
        "responses",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "srv CPU",
        "Graph TCP"
    );
    for row in &summary.rows {
        print_row(row);
    }

    println!();
    println!("Targets (ratios within this run):");
    for &connections in &cli.connections {
        let health = find(summary, OURS, "GET /", connections);
        let login = find(summary, OURS, "GET /facebook/login", connections);
        let bare = find(summary, BARE, "GET /", connections);
        if let (Some(health), Some(bare)) = (health, bare) {
            let ratio = rps(health) / rps(bare);
            check(
                &format!("GET / / bare hyper at {connections} conns: {ratio:.3}"),
                &format!(">= {HEALTH_RATIO_TARGET}"),
                ratio >= HEALTH_RATIO_TARGET,
            );
        }
        if let (Some(login), Some(bare)) = (login, bare) {
            let ratio = rps(login) / rps(bare);
            check(
                &format!("GET /facebook/login / bare hyper at {connections} conns: {ratio:.3}"),
                &format!(">= {LOGIN_RATIO_TARGET}"),
                ratio >= LOGIN_RATIO_TARGET,
            );
        }
    }
    for &connections in &cli.connections {
        let Some(callback) = find(summary, OURS, "GET /facebook/callback", connections) else {
            continue;
        };
        if let Some(name) = &summary.compare_name {
            if let Some(theirs) = find(summary, name, "GET /facebook/callback", connections) {
                let speedup = rps(callback) / rps(theirs);
                check(
                    &format!("callback / {name} at {connections} conns: {speedup:.1}x"),
                    &format!(">= {CALLBACK_SPEEDUP_TARGET}x"),
                    speedup >= CALLBACK_SPEEDUP_TARGET,
                );
            }
        }
        if let Some(opened) = callback.graph_connections {
            let sent = callback.result.succeeded + callback.result.errors;
            let limit = GRAPH_CONNECTIONS_FACTOR * connections;
            check(
                &format!(
                    "Graph TCP connections at {connections} conns: {opened} over {sent} callbacks"
                ),
                &format!("<= {limit}"),
                opened <= limit,
            );
        }
    }

    let idle_mb = megabytes(summary.idle_rss_bytes);
    check(
        &format!("idle RSS: {idle_mb:.1} MB"),
        &format!("<= {} MB", megabytes(IDLE_RSS_TARGET)),
        summary.idle_rss_bytes <= IDLE_RSS_TARGET,
    );
    if let Some(peak) = cli.connections.iter().max() {
        println!(
            "  RSS under {peak} connections: {:.1} MB (largest sample, every 50 ms)",
            megabytes(summary.loaded_rss_bytes)
        );
    }
    let mut startups = summary.startups.clone();
    startups.sort();
    if let (Some(median), Some(max)) = (startups.get(startups.len() / 2), startups.last()) {
        check(
            &format!(
                "start-up to first 200 on /: median {:.1} ms, max {:.1} ms over {} starts",
                millis(*median),
                millis(*max),
                startups.len()
            ),
            &format!("< {} ms", STARTUP_TARGET.as_millis()),
            *max < STARTUP_TARGET,
        );
    }

    println!();
    match summary.cores {
        Some(cores) => println!(
            "Servers pinned to CPU {}; load generator and fake Graph API pinned to CPU {}.",
            cores.server, cores.load
        ),
        None => println!("Not pinned: servers, load generator and fake Graph API share every CPU."),
    }
    println!(
        "Service log (RUST_LOG=info): {}",
        summary.log_path.display()
    );
    for row in summary.rows.iter().filter(|row| row.result.errors > 0) {
        println!(
            "First error of {} {} at {} conns: {}",
            row.server,
            row.route,
            row.connections,
            row.result
                .first_error
                .as_deref()
                .unwrap_or("(none recorded)")
        );
    }
}

fn print_row(row: &Row) {
    let result = &row.result;
    let latency = |quantile| {
        result
            .latency_ms(quantile)
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"))
    };
    let cpu = row
        .cpu_share
        .map_or_else(|| "-".to_owned(), |share| format!("{:.0}%", share * 100.0));
    let graph = row
        .graph_connections
        .map_or_else(|| "-".to_owned(), |count| count.to_string());
    println!(
        "{:<18} {:<24} {:>5} {:>9} {:>6} {:>9.0} {:>8} {:>8} {:>7} {:>9}",
        row.server,
        row.route,
        row.connections,
        result.succeeded,
        result.errors,
        result.requests_per_second(),
        latency(0.5),
        latency(0.99),
        cpu,
        graph
    );
}

fn find<'a>(
    summary: &'a Summary,
    server: &str,
    route: &str,
    connections: usize,
) -> Option<&'a Row> {
    summary
        .rows
        .iter()
        .find(|row| row.server == server && row.route == route && row.connections == connections)
}

fn rps(row: &Row) -> f64 {
    row.result.requests_per_second()
}

fn check(figure: &str, target: &str, met: bool) {
    let verdict = if met { "met" } else { "MISSED" };
    println!("  {figure} (target {target}): {verdict}");
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
