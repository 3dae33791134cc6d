//! The crate's sandbox served as the Graph API, with a count of accepted TCP
//! connections so the benchmark can tell whether a server reuses them.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use axum::serve::Listener;
use facebook_oauth::facebook::graph::sign_token;
use facebook_oauth::sandbox::{Sandbox, SandboxConfig};
use tokio::net::{TcpListener, TcpStream};

/// Whether Graph calls must carry `appsecret_proof`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofPolicy {
    /// As the sandbox itself behaves: an app with "Require App Secret" on.
    Required,
    /// An app with "Require App Secret" off: a call without a proof gets one
    /// computed here before it reaches the sandbox. The original Python
    /// service sends no proof, so its comparison run needs this.
    Optional,
}

/// A running fake Graph API.
pub struct FakeGraph {
    pub sandbox: Sandbox,
    pub address: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl FakeGraph {
    /// Serves a new sandbox on `127.0.0.1:port` (0 for any free port) in a
    /// task on the current runtime.
    pub async fn start(port: u16, policy: ProofPolicy) -> io::Result<Self> {
        // The registered redirect URI only matters to the dialog, which the
        // benchmark never opens. Each code carries its own redirect URI.
        let sandbox = Sandbox::new(SandboxConfig::with_redirect_uri(
            "http://127.0.0.1/facebook/callback",
        ));
        let inner = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let address = inner.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let listener = CountingListener {
            inner,
            accepted: Arc::clone(&accepted),
        };

        let mut router: Router = sandbox.router();
        if policy == ProofPolicy::Optional {
            router = router.layer(axum::middleware::map_request(add_missing_proof));
        }
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("fake Graph API stopped: {error}");
            }
        });
        Ok(Self {
            sandbox,
            address,
            accepted,
        })
    }

    /// Base URL of the Graph API, for `FACEBOOK_GRAPH_URL`.
    pub fn graph_url(&self) -> String {
        format!("http://{}/graph", self.address)
    }

    /// Base URL of the login dialog, for `FACEBOOK_DIALOG_URL`.
    pub fn dialog_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// TCP connections accepted since start.
    pub fn accepted_connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// A TCP listener that counts the connections it accepts.
struct CountingListener {
    inner: TcpListener,
    accepted: Arc<AtomicUsize>,
}

impl Listener for CountingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let accepted = Listener::accept(&mut self.inner).await;
        self.accepted.fetch_add(1, Ordering::Relaxed);
        accepted
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Listener::local_addr(&self.inner)
    }
}

/// Appends `appsecret_proof` to a request that carries `access_token` in its
/// query but no proof, signed with the sandbox's app secret.
async fn add_missing_proof(mut request: Request) -> Request {
    let Some(query) = request.uri().query() else {
        return request;
    };
    let mut token = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "appsecret_proof" => return request,
            "access_token" => token = Some(value.into_owned()),
            _ => {}
        }
    }
    let Some(token) = token else {
        return request;
    };

    let proof = sign_token(SandboxConfig::DEFAULT_APP_SECRET, &token);
    let rewritten = format!("{}?{query}&appsecret_proof={proof}", request.uri().path());
    match rewritten.parse::<Uri>() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(error) => eprintln!("fake Graph API: failed to add appsecret_proof: {error}"),
    }
    request
}
