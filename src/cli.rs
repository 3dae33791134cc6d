//! Command-line options. Everything else is configured by environment variables.

use clap::Parser;

/// The most Pages the service collects for one login (100 requests of 100
/// Pages), so a larger sandbox could only show the paging cap's error.
const MAX_SANDBOX_PAGES: i64 = 10_000;

/// Facebook Login backend: redirects a browser to Facebook's login dialog and
/// returns the user's token and Pages as JSON.
///
/// Configuration comes from environment variables and a .env file; see
/// .env.example. HOST and PORT set the listening address (default 127.0.0.1:5000).
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    /// Run with a built-in fake Facebook on the same server, so the whole
    /// login works with no Facebook app. No real Facebook is contacted, and
    /// FACEBOOK_APP_ID, FACEBOOK_APP_SECRET, FACEBOOK_REDIRECT_URI and the
    /// Facebook URLs are ignored.
    #[arg(long)]
    pub sandbox: bool,

    /// Number of Pages the sandbox user manages, 0 to 10000 (with --sandbox
    /// only; default 3).
    #[arg(long, env = "SANDBOX_PAGES",
          value_parser = clap::value_parser!(u32).range(0..=MAX_SANDBOX_PAGES))]
    pub sandbox_pages: Option<u32>,
}
