//! Configuration, read once at start-up from the environment (and `.env`).
//!
//! Every variable is validated before the server binds. All problems are
//! collected and reported together, so an operator fixes them in one pass
//! instead of restarting once per mistake.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use url::Url;

/// Graph API version used when `FACEBOOK_GRAPH_VERSION` is unset. Facebook
/// serves v25.0 until 29 July 2028, per its versions changelog
/// (<https://developers.facebook.com/docs/graph-api/changelog/versions/>).
pub const DEFAULT_GRAPH_VERSION: &str = "v25.0";

/// The oldest Graph API version Facebook still served in December 2026; v20.0
/// was retired on 24 September 2026. Older versions are silently upgraded by
/// Facebook, which may change responses, so start-up warns about them.
/// NOTE: v21.0 is listed as available until 21 January 2027, so this needs
/// updating after that date.
pub const OLDEST_SERVED_GRAPH_VERSION: (u32, u32) = (21, 0);

pub const DEFAULT_SCOPES: &str = "pages_messaging,pages_show_list";
pub const DEFAULT_PAGE_FIELDS: &str = "id,name,access_token,category,category_list,tasks";
pub const DEFAULT_DIALOG_URL: &str = "https://www.facebook.com";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
const MAX_TIMEOUT_SECS: u64 = 120;

/// Default of `FACEBOOK_MAX_IN_FLIGHT`: enough for 500 logins finishing at
/// the same moment on one instance, while bounding sockets and memory when
/// Facebook hangs.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;
const MAX_MAX_IN_FLIGHT: usize = 100_000;

/// A value that must never reach a log line, an error message or a response.
///
/// `Debug` prints `Secret([redacted])`, and there is no `Display`, so the value
/// only leaves through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret itself. Only for signing and for the token exchange.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret([redacted])")
    }
}

/// The whole service configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub facebook: FacebookConfig,
    /// Origins allowed by CORS. Empty means any origin, without credentials.
    pub cors_allowed_origins: Vec<String>,
    pub host: IpAddr,
    pub port: u16,
    pub log: LogConfig,
}

/// Settings of the Facebook app and of the Graph API calls.
#[derive(Debug, Clone)]
pub struct FacebookConfig {
    /// `FACEBOOK_APP_ID`: the numeric App ID.
    pub app_id: String,
    /// `FACEBOOK_APP_SECRET`: signs the login state and every Graph call.
    pub app_secret: Secret,
    /// `FACEBOOK_REDIRECT_URI`, kept byte for byte as configured, because
    /// Facebook compares it as a string with the registered one.
    pub redirect_uri: String,
    /// `FACEBOOK_SCOPES`: permissions requested in the login dialog.
    pub scopes: String,
    /// `FACEBOOK_GRAPH_VERSION`, such as `v25.0`.
    pub graph_version: String,
    /// `FACEBOOK_DIALOG_URL`, without a trailing slash.
    pub dialog_url: String,
    /// `FACEBOOK_GRAPH_URL`, without a trailing slash.
    pub graph_url: String,
    /// `FACEBOOK_PAGE_FIELDS`: the `fields` requested from `/me/accounts`.
    pub page_fields: String,
    /// `FACEBOOK_TIMEOUT_SECS`: connect and whole-request timeout of each Graph call.
    pub timeout: Duration,
    /// `FACEBOOK_MAX_IN_FLIGHT`: callbacks that may wait on Graph at once.
    /// Each makes one Graph request at a time, so this also bounds the Graph
    /// requests in flight. Callbacks beyond it get 503 at once.
    pub max_in_flight: usize,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `RUST_LOG`, an `EnvFilter` directive such as `info` or `facebook_oauth=debug`.
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Every invalid or missing variable found at start-up.
#[derive(Debug)]
pub struct ConfigError {
    pub problems: Vec<String>,
    /// The mode being configured, so the message offers `--sandbox` only when it helps.
    pub mode: Mode,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "invalid configuration:")?;
        for problem in &self.problems {
            writeln!(formatter, "  - {problem}")?;
        }
        write!(
            formatter,
            "Set these in the environment or in a .env file (see .env.example)"
        )?;
        match self.mode {
            Mode::Facebook => write!(
                formatter,
                ", or run with --sandbox to try the service without a Facebook app."
            ),
            Mode::Sandbox => write!(formatter, "."),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Source of the Facebook settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Real Facebook: the app settings are required.
    Facebook,
    /// The built-in sandbox: app settings get sandbox values and real ones are ignored.
    Sandbox,
}

/// Names of the variables that describe a real Facebook app, ignored in sandbox mode.
pub const REAL_APP_VARIABLES: [&str; 5] = [
    "FACEBOOK_APP_ID",
    "FACEBOOK_APP_SECRET",
    "FACEBOOK_REDIRECT_URI",
    "FACEBOOK_DIALOG_URL",
    "FACEBOOK_GRAPH_URL",
];

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env(mode: Mode) -> Result<Self, ConfigError> {
        Self::from_lookup(mode, |name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which returns a variable's
    /// value or `None` when it is unset. An empty value counts as unset.
    pub fn from_lookup(
        mode: Mode,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let read = |name: &str| lookup(name).map(|value| value.trim().to_owned());
        let read = |name: &str| read(name).filter(|value| !value.is_empty());
        let mut problems = Vec::new();

        let host = parse_host(read("HOST"), &mut problems);
        let port = parse_port(read("PORT"), &mut problems);
        let scopes = parse_scopes(read("FACEBOOK_SCOPES"), &mut problems);
        let graph_version = parse_graph_version(read("FACEBOOK_GRAPH_VERSION"), &mut problems);
        let page_fields = parse_page_fields(read("FACEBOOK_PAGE_FIELDS"), &mut problems);
        let timeout = parse_timeout(read("FACEBOOK_TIMEOUT_SECS"), &mut problems);
        let max_in_flight = parse_max_in_flight(read("FACEBOOK_MAX_IN_FLIGHT"), &mut problems);
        let cors_allowed_origins = parse_origins(read("CORS_ALLOWED_ORIGINS"), &mut problems);
        let log = LogConfig {
            filter: parse_log_filter(read("RUST_LOG"), &mut problems),
            format: parse_log_format(read("LOG_FORMAT"), &mut problems),
        };

        let facebook = match mode {
            Mode::Sandbox => FacebookConfig {
                scopes,
                graph_version,
                page_fields,
                timeout,
                max_in_flight,
                ..FacebookConfig::sandbox(port)
            },
            Mode::Facebook => FacebookConfig {
                app_id: parse_app_id(read("FACEBOOK_APP_ID"), &mut problems),
                app_secret: parse_app_secret(read("FACEBOOK_APP_SECRET"), &mut problems),
                redirect_uri: parse_redirect_uri(read("FACEBOOK_REDIRECT_URI"), &mut problems),
                scopes,
                graph_version,
                dialog_url: parse_base_url(
                    "FACEBOOK_DIALOG_URL",
                    read("FACEBOOK_DIALOG_URL"),
                    DEFAULT_DIALOG_URL,
                    &mut problems,
                ),
                graph_url: parse_base_url(
                    "FACEBOOK_GRAPH_URL",
                    read("FACEBOOK_GRAPH_URL"),
                    DEFAULT_GRAPH_URL,
                    &mut problems,
                ),
                page_fields,
                timeout,
                max_in_flight,
            },
        };

        if !problems.is_empty() {
            return Err(ConfigError { problems, mode });
        }
        Ok(Config {
            facebook,
            cors_allowed_origins,
            host,
            port,
            log,
        })
    }

    /// Lists the non-fatal problems that start-up should log as warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.cors_allowed_origins.is_empty() {
            warnings.push(
                "CORS_ALLOWED_ORIGINS is unset, so any origin may call this service \
                 (without credentials); set it to your frontend's origins in production"
                    .to_owned(),
            );
        }
        if let Some((major, minor)) = split_version(&self.facebook.graph_version) {
            if (major, minor) < OLDEST_SERVED_GRAPH_VERSION {
                warnings.push(format!(
                    "FACEBOOK_GRAPH_VERSION={} is retired, so Facebook answers with a newer \
                     version that may behave differently; set it to {DEFAULT_GRAPH_VERSION} or newer",
                    self.facebook.graph_version
                ));
            }
        }
        if let Ok(url) = Url::parse(&self.facebook.redirect_uri) {
            let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            if url.scheme() == "http" && !local {
                warnings.push(
                    "FACEBOOK_REDIRECT_URI uses http, but Facebook's Enforce HTTPS setting \
                     (on by default) only allows https redirect URIs; use an https URL"
                        .to_owned(),
                );
            }
        }
        warnings
    }
}

impl FacebookConfig {
    /// Settings that point every Facebook URL at the built-in sandbox served on
    /// `port`. The dialog uses `127.0.0.1` while the redirect URI uses
    /// `localhost`, so the browser crosses sites as it does with facebook.com
    /// and the `SameSite=Lax` state cookie is exercised for real.
    pub fn sandbox(port: u16) -> Self {
        use crate::sandbox::SandboxConfig;

        FacebookConfig {
            app_id: SandboxConfig::DEFAULT_APP_ID.to_owned(),
            app_secret: Secret::new(SandboxConfig::DEFAULT_APP_SECRET),
            redirect_uri: format!("http://localhost:{port}/facebook/callback"),
            scopes: DEFAULT_SCOPES.to_owned(),
            graph_version: DEFAULT_GRAPH_VERSION.to_owned(),
            dialog_url: format!("http://127.0.0.1:{port}/sandbox"),
            graph_url: format!("http://127.0.0.1:{port}/sandbox/graph"),
            page_fields: DEFAULT_PAGE_FIELDS.to_owned(),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

fn parse_host(value: Option<String>, problems: &mut Vec<String>) -> IpAddr {
    let default = IpAddr::from([127, 0, 0, 1]);
    let Some(value) = value else { return default };
    value.parse().unwrap_or_else(|_| {
        problems.push(format!(
            "HOST={value:?} is not an IP address: use 127.0.0.1 for this machine only \
             or 0.0.0.0 to listen on every interface"
        ));
        default
    })
}

fn parse_port(value: Option<String>, problems: &mut Vec<String>) -> u16 {
    let Some(value) = value else { return 5000 };
    value.parse().unwrap_or_else(|_| {
        problems.push(format!(
            "PORT={value:?} is not a port number: use a whole number from 0 to 65535"
        ));
        5000
    })
}

fn parse_app_id(value: Option<String>, problems: &mut Vec<String>) -> String {
    let Some(value) = value else {
        problems.push(
            "FACEBOOK_APP_ID is missing: set it to the App ID shown in the App Dashboard \
             under App settings > Basic"
                .to_owned(),
        );
        return String::new();
    };
    if !value.bytes().all(|byte| byte.is_ascii_digit()) {
        problems.push(format!(
            "FACEBOOK_APP_ID={value:?} is invalid: an App ID contains only digits \
             (App Dashboard > App settings > Basic)"
        ));
    }
    value
}

fn parse_app_secret(value: Option<String>, problems: &mut Vec<String>) -> Secret {
    let Some(value) = value else {
        problems.push(
            "FACEBOOK_APP_SECRET is missing: set it to the App Secret shown in the App \
             Dashboard under App settings > Basic"
                .to_owned(),
        );
        return Secret::new("");
    };
    if value.chars().any(|character| character.is_whitespace()) {
        problems.push(
            "FACEBOOK_APP_SECRET is invalid: it contains white space; copy the App Secret \
             again from App settings > Basic"
                .to_owned(),
        );
    }
    Secret::new(value)
}

fn parse_redirect_uri(value: Option<String>, problems: &mut Vec<String>) -> String {
    let Some(value) = value else {
        problems.push(
            "FACEBOOK_REDIRECT_URI is missing: set it to this service's callback URL, such as \
             https://auth.example.com/facebook/callback, and register the same URL under \
             Facebook Login > Settings > Valid OAuth Redirect URIs"
                .to_owned(),
        );
        return String::new();
    };
    match Url::parse(&value) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.has_host()
                && url.fragment().is_none() => {}
        _ => problems.push(format!(
            "FACEBOOK_REDIRECT_URI={value:?} is invalid: use an absolute http or https URL \
             without a fragment, such as https://auth.example.com/facebook/callback"
        )),
    }
    value
}

fn parse_scopes(value: Option<String>, problems: &mut Vec<String>) -> String {
    let Some(value) = value else {
        return DEFAULT_SCOPES.to_owned();
    };
    let valid = value
        .split([',', ' '])
        .filter(|scope| !scope.is_empty())
        .all(|scope| {
            scope
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
        });
    if !valid {
        problems.push(format!(
            "FACEBOOK_SCOPES={value:?} is invalid: list permission names separated by commas, \
             such as {DEFAULT_SCOPES}"
        ));
    }
    value
}

/// Splits `vNN.N` into its numbers, or returns `None` when it has another form.
fn split_version(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.strip_prefix('v')?.split_once('.')?;
    let all_digits =
        |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if !all_digits(major) || !all_digits(minor) || minor.len() != 1 || major.len() > 3 {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn parse_graph_version(value: Option<String>, problems: &mut Vec<String>) -> String {
    let Some(value) = value else {
        return DEFAULT_GRAPH_VERSION.to_owned();
    };
    if split_version(&value).is_none() {
        problems.push(format!(
            "FACEBOOK_GRAPH_VERSION={value:?} is invalid: use the form vNN.N, such as \
             {DEFAULT_GRAPH_VERSION}"
        ));
    }
    value
}

fn parse_base_url(
    name: &str,
    value: Option<String>,
    default: &str,
    problems: &mut Vec<String>,
) -> String {
    let Some(value) = value else {
        return default.to_owned();
    };
    match Url::parse(&value) {
        Ok(url) if url.scheme() == "http" && !is_loopback(&url) => problems.push(format!(
            "{name}={value:?} uses http for a host other than this machine, which would carry \
             the login or the app secret and tokens unencrypted: use https, such as {default}"
        )),
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.has_host()
                && url.query().is_none()
                && url.fragment().is_none() => {}
        _ => problems.push(format!(
            "{name}={value:?} is invalid: use an absolute https URL without a query, such as \
             {default}"
        )),
    }
    value.trim_end_matches('/').to_owned()
}

/// Returns whether the URL's host is this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

fn parse_page_fields(value: Option<String>, problems: &mut Vec<String>) -> String {
    let Some(value) = value else {
        return DEFAULT_PAGE_FIELDS.to_owned();
    };
    // Graph field syntax also allows expansions such as `picture{url}` and
    // modifiers such as `.limit(5)`, so those characters are accepted too.
    let valid = value.bytes().all(|byte| {
        byte.is_ascii_alphanumeric()
            || matches!(byte, b'_' | b',' | b'{' | b'}' | b'.' | b'(' | b')')
    });
    if !valid {
        problems.push(format!(
            "FACEBOOK_PAGE_FIELDS={value:?} is invalid: list Page field names separated by \
             commas, such as {DEFAULT_PAGE_FIELDS}"
        ));
    }
    value
}

fn parse_timeout(value: Option<String>, problems: &mut Vec<String>) -> Duration {
    let default = Duration::from_secs(DEFAULT_TIMEOUT_SECS);
    let Some(value) = value else { return default };
    match value.parse::<u64>() {
        Ok(seconds @ 1..=MAX_TIMEOUT_SECS) => Duration::from_secs(seconds),
        _ => {
            problems.push(format!(
                "FACEBOOK_TIMEOUT_SECS={value:?} is invalid: use a whole number of seconds \
                 from 1 to {MAX_TIMEOUT_SECS}"
            ));
            default
        }
    }
}

fn parse_max_in_flight(value: Option<String>, problems: &mut Vec<String>) -> usize {
    let Some(value) = value else {
        return DEFAULT_MAX_IN_FLIGHT;
    };
    match value.parse::<usize>() {
        Ok(count @ 1..=MAX_MAX_IN_FLIGHT) => count,
        _ => {
            problems.push(format!(
                "FACEBOOK_MAX_IN_FLIGHT={value:?} is invalid: use a whole number from 1 to \
                 {MAX_MAX_IN_FLIGHT}"
            ));
            DEFAULT_MAX_IN_FLIGHT
        }
    }
}

fn parse_origins(value: Option<String>, problems: &mut Vec<String>) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    let mut origins = Vec::new();
    for origin in value
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
    {
        // An origin is scheme://host[:port] with nothing after it; `Url`
        // normalises it, so the check compares the round trip.
        let parsed = Url::parse(origin).ok().filter(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.has_host()
                && url.origin().ascii_serialization() == origin
        });
        match parsed {
            Some(_) => origins.push(origin.to_owned()),
            None => problems.push(format!(
                "CORS_ALLOWED_ORIGINS contains {origin:?}, which is not an origin: write each as \
                 scheme://host[:port] in lower case with no path or trailing slash, such as \
                 https://app.example.com; leave the variable unset to allow any origin"
            )),
        }
    }
    origins
}

fn parse_log_filter(value: Option<String>, problems: &mut Vec<String>) -> String {
    let Some(value) = value else {
        return "info".to_owned();
    };
    if tracing_subscriber::EnvFilter::try_new(&value).is_err() {
        problems.push(format!(
            "RUST_LOG={value:?} is invalid: use a level such as info or debug, or directives \
             such as facebook_oauth=debug,info"
        ));
    }
    value
}

fn parse_log_format(value: Option<String>, problems: &mut Vec<String>) -> LogFormat {
    match value.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            problems.push(format!("LOG_FORMAT={other:?} is invalid: use text or json"));
            LogFormat::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Config::from_lookup(Mode::Facebook, |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("FACEBOOK_APP_ID", "1234"),
        ("FACEBOOK_APP_SECRET", "s3cret"),
        (
            "FACEBOOK_REDIRECT_URI",
            "https://auth.example.com/facebook/callback?x=1",
        ),
    ];

    #[test]
    fn secret_debug_is_redacted() {
        let printed = format!("{:?}", Secret::new("hunter2"));
        assert_eq!(printed, "Secret([redacted])", "Debug must hide the value");
    }

    #[test]
    fn config_debug_hides_app_secret() {
        let config = load(&REQUIRED).expect("valid configuration");
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("s3cret"),
            "Debug of Config printed the secret: {printed}"
        );
    }

    #[test]
    fn defaults_apply_when_only_required_set() {
        let config = load(&REQUIRED).expect("valid configuration");
        assert_eq!(
            config.facebook.graph_version, DEFAULT_GRAPH_VERSION,
            "graph version"
        );
        assert_eq!(config.facebook.scopes, DEFAULT_SCOPES, "scopes");
        assert_eq!(
            config.facebook.page_fields, DEFAULT_PAGE_FIELDS,
            "page fields"
        );
        assert_eq!(config.facebook.timeout, Duration::from_secs(10), "timeout");
        assert_eq!(config.port, 5000, "port");
        assert_eq!(config.host, IpAddr::from([127, 0, 0, 1]), "host");
        assert!(config.cors_allowed_origins.is_empty(), "cors origins");
        assert_eq!(
            config.facebook.redirect_uri, "https://auth.example.com/facebook/callback?x=1",
            "redirect URI is kept byte for byte"
        );
    }

    #[test]
    fn every_problem_reported_at_once() {
        let error = load(&[("PORT", "http"), ("FACEBOOK_GRAPH_VERSION", "19")])
            .expect_err("configuration is invalid");
        let message = error.to_string();
        for name in [
            "FACEBOOK_APP_ID",
            "FACEBOOK_APP_SECRET",
            "FACEBOOK_REDIRECT_URI",
            "PORT",
            "FACEBOOK_GRAPH_VERSION",
        ] {
            assert!(
                message.contains(name),
                "message does not name {name}: {message}"
            );
        }
    }

    #[test]
    fn invalid_values_rejected() {
        let cases = [
            ("FACEBOOK_APP_ID", "my-app"),
            ("FACEBOOK_REDIRECT_URI", "/facebook/callback"),
            ("FACEBOOK_REDIRECT_URI", "ftp://example.com/cb"),
            ("FACEBOOK_GRAPH_VERSION", "v25"),
            ("FACEBOOK_GRAPH_URL", "graph.facebook.com"),
            ("FACEBOOK_GRAPH_URL", "http://graph.facebook.com"),
            ("FACEBOOK_DIALOG_URL", "https://www.facebook.com/?x=1"),
            ("FACEBOOK_TIMEOUT_SECS", "0"),
            ("FACEBOOK_TIMEOUT_SECS", "ten"),
            ("FACEBOOK_MAX_IN_FLIGHT", "0"),
            ("FACEBOOK_SCOPES", "pages_show_list;drop"),
            ("FACEBOOK_PAGE_FIELDS", "id name"),
            ("CORS_ALLOWED_ORIGINS", "https://app.example.com/"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("LOG_FORMAT", "xml"),
            ("RUST_LOG", "=[["),
            ("HOST", "localhost"),
        ];
        for (name, value) in cases {
            let mut pairs = REQUIRED.to_vec();
            pairs.retain(|(key, _)| *key != name);
            pairs.push((name, value));
            let error = load(&pairs).expect_err(&format!("{name}={value} must be rejected"));
            assert!(
                error.to_string().contains(name),
                "error for {name}={value} does not name the variable: {error}"
            );
        }
    }

    #[test]
    fn cors_origins_parsed_as_list() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push((
            "CORS_ALLOWED_ORIGINS",
            "https://a.example.com, http://localhost:3000",
        ));
        let config = load(&pairs).expect("valid configuration");
        assert_eq!(
            config.cors_allowed_origins,
            ["https://a.example.com", "http://localhost:3000"],
            "origins"
        );
    }

    #[test]
    fn retired_graph_version_warns() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("FACEBOOK_GRAPH_VERSION", "v19.0"));
        let config = load(&pairs).expect("an old version is still valid");
        let warnings = config.warnings().join("\n");
        assert!(
            warnings.contains("v19.0 is retired"),
            "no retirement warning: {warnings}"
        );
    }

    #[test]
    fn sandbox_mode_needs_no_app_settings() {
        let config = Config::from_lookup(Mode::Sandbox, |_| None).expect("sandbox needs nothing");
        assert_eq!(
            config.facebook.redirect_uri, "http://localhost:5000/facebook/callback",
            "sandbox redirect URI"
        );
        assert_eq!(
            config.facebook.dialog_url, "http://127.0.0.1:5000/sandbox",
            "sandbox dialog URL uses another host name than the redirect URI"
        );
    }
}
