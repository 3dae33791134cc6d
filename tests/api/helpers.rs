//! Starts a sandbox Facebook and the service on 127.0.0.1:0, in this process
//! or as the real binary.

// Each test binary that includes this file uses only some of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use facebook_oauth::config::{Config, FacebookConfig, LogConfig, LogFormat, Secret};
use facebook_oauth::sandbox::{Sandbox, SandboxConfig};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, LOCATION};
use serde_json::Value;
use tokio::net::TcpListener;
use url::Url;

pub struct TestApp {
    pub address: SocketAddr,
    pub sandbox: Sandbox,
    pub config: Config,
    /// Keeps cookies and follows no redirects, as a browser that stops at each hop.
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
}

/// Options for [`spawn_app`].
pub struct TestOptions {
    pub page_count: usize,
    pub app_secret: Option<String>,
    pub timeout: Duration,
    pub cors_allowed_origins: Vec<String>,
    pub max_in_flight: usize,
    pub graph_version: Option<String>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            page_count: 3,
            app_secret: None,
            timeout: Duration::from_secs(10),
            cors_allowed_origins: Vec::new(),
            max_in_flight: facebook_oauth::config::DEFAULT_MAX_IN_FLIGHT,
            graph_version: None,
        }
    }
}

pub fn new_client() -> reqwest::Client {
    new_client_with_jar().0
}

/// Builds a client and returns it with its cookie jar, which tests can read.
pub fn new_client_with_jar() -> (reqwest::Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds");
    (client, jar)
}

/// Starts a sandbox Facebook and one service instance that uses it.
pub async fn spawn_app(options: TestOptions) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind service");
    let address = listener.local_addr().expect("service address");
    let redirect_uri = format!("http://127.0.0.1:{}/facebook/callback", address.port());

    let sandbox = Sandbox::new(SandboxConfig {
        page_count: options.page_count,
        ..SandboxConfig::with_redirect_uri(redirect_uri.clone())
    });
    let sandbox_address = spawn_sandbox(&sandbox).await;

    let mut facebook = FacebookConfig::sandbox(address.port());
    if let Some(version) = options.graph_version {
        facebook.graph_version = version;
    }
    let config = Config {
        facebook: FacebookConfig {
            app_secret: Secret::new(
                options
                    .app_secret
                    .unwrap_or_else(|| SandboxConfig::DEFAULT_APP_SECRET.to_owned()),
            ),
            redirect_uri,
            dialog_url: format!("http://{sandbox_address}/sandbox"),
            graph_url: format!("http://{sandbox_address}/sandbox/graph"),
            timeout: options.timeout,
            max_in_flight: options.max_in_flight,
            ..facebook
        },
        cors_allowed_origins: options.cors_allowed_origins,
        host: address.ip(),
        port: address.port(),
        log: LogConfig {
            filter: "info".to_owned(),
            format: LogFormat::Text,
        },
    };
    serve_instance(listener, &config);

    let (client, jar) = new_client_with_jar();
    TestApp {
        address,
        sandbox,
        config,
        client,
        jar,
    }
}

/// Serves the sandbox alone, nested at `/sandbox` as the service does.
pub async fn spawn_sandbox(sandbox: &Sandbox) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sandbox");
    let address = listener.local_addr().expect("sandbox address");
    let router = axum::Router::new().nest("/sandbox", sandbox.router());
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// Serves another instance of the service with `config`, on `listener`.
pub fn serve_instance(listener: TcpListener, config: &Config) {
    let app = facebook_oauth::build_app(config, None).expect("app builds");
    tokio::spawn(facebook_oauth::serve(listener, app, std::future::pending()));
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Opens `/facebook/login` and returns the state sent to the dialog.
    pub async fn start_login(&self) -> String {
        let response = self
            .client
            .get(self.url("/facebook/login"))
            .send()
            .await
            .expect("login request");
        assert_eq!(response.status(), 302, "login redirects");
        let location = location(response.headers());
        query_param(&location, "state").expect("dialog URL has a state")
    }

    /// Returns the names of the login cookies the client would send to the callback.
    pub fn login_cookie_names(&self) -> Vec<String> {
        let url = Url::parse(&self.url("/facebook/callback")).expect("URL");
        let header = self.jar.cookies(&url);
        let header = header
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        header
            .split("; ")
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, value)| name.starts_with("fb_login_") && !value.is_empty())
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// Asks the sandbox for a code as if the user chose Continue.
    pub fn issue_code(&self) -> String {
        self.sandbox.issue_code(
            &self.config.facebook.redirect_uri,
            &self.config.facebook.scopes,
        )
    }

    /// Calls the callback with the given query, through the cookie-aware client.
    pub async fn callback(&self, query: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .get(self.url("/facebook/callback"))
            .query(query)
            .send()
            .await
            .expect("callback request")
    }

    /// Runs a whole login and returns the callback's response.
    pub async fn log_in(&self) -> reqwest::Response {
        let state = self.start_login().await;
        let code = self.issue_code();
        self.callback(&[("code", &code), ("state", &state)]).await
    }
}

pub fn location(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("ASCII Location")
        .to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = Url::parse(url).expect("absolute URL");
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Reads a JSON body, failing the test with the body when it is not JSON.
pub async fn json_body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("body is not JSON: {text}"))
}

/// The real binary running `--sandbox` on a free port; killed when dropped.
pub struct SandboxProcess {
    pub child: std::process::Child,
    pub port: u16,
    /// What the process printed to stderr after the start-up banner.
    pub stderr: Arc<std::sync::Mutex<String>>,
}

impl SandboxProcess {
    /// Starts `facebook-oauth --sandbox` with `PORT=0` and the given extra
    /// arguments, and waits for the banner that names the login URL.
    pub fn start(arguments: &[&str], variables: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let folder =
            std::env::temp_dir().join(format!("facebook-oauth-sandbox-{}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("temporary folder");
        let mut command = Command::new(env!("CARGO_BIN_EXE_facebook-oauth"));
        command
            .arg("--sandbox")
            .args(arguments)
            .env_clear()
            .env("PORT", "0")
            .envs(variables.iter().copied())
            .current_dir(&folder)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let mut child = command.spawn().expect("the binary starts");

        let stderr = child.stderr.take().expect("piped stderr");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let printed = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = printed.clone();
        std::thread::spawn(move || {
            let marker = "Open http://localhost:";
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split(marker).nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = port_tx.send(port.parse::<u16>().ok());
                }
                let mut sink = sink.lock().expect("stderr buffer");
                sink.push_str(&line);
                sink.push('\n');
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "the sandbox printed no login URL: {}",
                    printed.lock().expect("buffer")
                )
            });
        Self {
            child,
            port,
            stderr: printed,
        }
    }

    pub fn login_url(&self) -> String {
        format!("http://localhost:{}/facebook/login", self.port)
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
