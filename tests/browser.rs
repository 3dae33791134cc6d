//! End to end in headless Chromium: the real binary in sandbox mode, the real
//! dialog page, real clicks, real cookies crossing from 127.0.0.1 to localhost.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test
//! prints why and passes, unless `CI` is set, where it fails.

#[path = "api/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use helpers::SandboxProcess;
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Returns the path where the test saves its screenshot of the sandbox dialog.
fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-dialog.png")
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free port and waits until it accepts connections.
async fn start_chromedriver() -> (Driver, String) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("address").port()
    };
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let address = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (driver, address);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port} within 20 seconds");
}

/// Waits for the browser to reach the callback, then reads the JSON that
/// Chromium shows for it. Retries while the page is still loading.
async fn read_callback_json(client: &fantoccini::Client) -> Result<Value, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last_text = String::new();
    while Instant::now() < deadline {
        let on_callback = client
            .current_url()
            .await
            .is_ok_and(|url| url.path() == "/facebook/callback");
        if on_callback {
            if let Ok(body) = client.find(Locator::Css("body")).await {
                if let Ok(text) = body.text().await {
                    if let Ok(json) = serde_json::from_str(&text) {
                        return Ok(json);
                    }
                    last_text = text;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "the browser showed no JSON at the callback within 20 seconds: {last_text}"
    ))
}

/// What the browser saw on the way through the dialog.
struct BrowserOutcome {
    dialog_url: url::Url,
    callback_url: url::Url,
    login: Value,
    cancelled: Value,
}

/// Opens the login URL, saves a screenshot of the dialog, clicks Continue and
/// reads the JSON, then logs in again and clicks Cancel.
async fn click_through_dialog(
    client: &fantoccini::Client,
    login_url: &str,
) -> Result<BrowserOutcome, String> {
    let failed = |step: &str| {
        let step = step.to_owned();
        move |error: fantoccini::error::CmdError| format!("{step}: {error}")
    };
    client
        .goto(login_url)
        .await
        .map_err(failed("open the login URL"))?;
    let continue_button = client
        .wait()
        .for_element(Locator::XPath("//button[normalize-space()='Continue']"))
        .await
        .map_err(failed("find Continue"))?;
    let dialog_url = client
        .current_url()
        .await
        .map_err(failed("read the dialog URL"))?;
    let screenshot = client
        .screenshot()
        .await
        .map_err(failed("take a screenshot"))?;
    std::fs::write(screenshot_path(), screenshot)
        .map_err(|error| format!("save the screenshot: {error}"))?;
    continue_button
        .click()
        .await
        .map_err(failed("click Continue"))?;
    let login = read_callback_json(client).await?;
    let callback_url = client
        .current_url()
        .await
        .map_err(failed("read the callback URL"))?;

    client
        .goto(login_url)
        .await
        .map_err(failed("open the login URL again"))?;
    client
        .wait()
        .for_element(Locator::XPath("//button[normalize-space()='Cancel']"))
        .await
        .map_err(failed("find Cancel"))?
        .click()
        .await
        .map_err(failed("click Cancel"))?;
    let cancelled = read_callback_json(client).await?;
    Ok(BrowserOutcome {
        dialog_url,
        callback_url,
        login,
        cancelled,
    })
}

#[tokio::test]
async fn browser_logs_in_and_cancels() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        let reason = format!(
            "browser test needs {CHROMIUM} and {CHROMEDRIVER}: install them with \
             `apt-get install chromium chromium-driver` (.ci/run does)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{reason}");
        }
        eprintln!("SKIPPED browser_logs_in_and_cancels: {reason}");
        return;
    }
    let service = SandboxProcess::start(&[], &[]);
    let (_driver, driver_address) = start_chromedriver().await;
    let profile =
        std::env::temp_dir().join(format!("facebook-oauth-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=800,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver_address)
        .await
        .expect("a Chromium session");

    // The session is closed before any assertion, so a failure never leaves
    // Chromium running after chromedriver is killed.
    let outcome = click_through_dialog(&client, &service.login_url()).await;
    let closed = client.close().await;
    let _ = std::fs::remove_dir_all(&profile);
    let BrowserOutcome {
        dialog_url,
        callback_url,
        login,
        cancelled,
    } = outcome.unwrap_or_else(|error| panic!("the browser flow failed: {error}"));
    assert!(closed.is_ok(), "Chromium closed: {closed:?}");

    assert_eq!(
        dialog_url.host_str(),
        Some("127.0.0.1"),
        "the dialog is on another site"
    );
    assert_eq!(
        callback_url.host_str(),
        Some("localhost"),
        "the callback is on the service"
    );
    assert!(
        login["token_data"]["access_token"]
            .as_str()
            .is_some_and(|token| !token.is_empty()),
        "Continue gives a token: {login}"
    );
    assert_eq!(
        login["pages"]["data"].as_array().map(Vec::len),
        Some(3),
        "Continue gives every sandbox Page: {login}"
    );
    assert_eq!(
        cancelled["error"], "access_denied",
        "Cancel gives access_denied: {cancelled}"
    );
    assert_eq!(
        cancelled["facebook"]["error_reason"], "user_denied",
        "Cancel carries Facebook's reason: {cancelled}"
    );
}
