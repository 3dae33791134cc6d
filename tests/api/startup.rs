//! Start-up of the real binary: configuration errors, --help and --version.

use std::path::PathBuf;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_facebook-oauth");

/// Runs the binary with only `variables` set, in an empty folder so no `.env` is read.
pub fn run_binary(arguments: &[&str], variables: &[(&str, &str)]) -> Output {
    let folder = empty_folder();
    let mut command = Command::new(BINARY);
    command.args(arguments).env_clear().current_dir(&folder);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs(variables.iter().copied());
    let output = command.output().expect("the binary runs");
    let _ = std::fs::remove_dir_all(folder);
    output
}

pub fn empty_folder() -> PathBuf {
    let folder = std::env::temp_dir().join(format!(
        "facebook-oauth-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&folder).expect("temporary folder");
    folder
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

const REQUIRED: [(&str, &str); 3] = [
    ("FACEBOOK_APP_ID", "1234567890"),
    ("FACEBOOK_APP_SECRET", "test-secret-value"),
    (
        "FACEBOOK_REDIRECT_URI",
        "http://localhost:5000/facebook/callback",
    ),
];

#[test]
fn each_missing_variable_stops_startup() {
    for missing in REQUIRED.map(|(name, _)| name) {
        let variables: Vec<(&str, &str)> = REQUIRED
            .iter()
            .copied()
            .filter(|(name, _)| *name != missing)
            .collect();

        let output = run_binary(&[], &variables);

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(78),
            "{missing} missing: exit code, stderr {stderr}"
        );
        assert!(
            stderr.contains(missing),
            "{missing} missing: message names it: {stderr}"
        );
        assert!(
            stderr.contains(".env.example"),
            "{missing} missing: message points to the docs"
        );
    }
}

#[test]
fn all_missing_variables_reported_together() {
    let output = run_binary(&[], &[]);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "exit code");
    for (name, _) in REQUIRED {
        assert!(stderr.contains(name), "message names {name}: {stderr}");
    }
    assert!(
        stderr.contains("--sandbox"),
        "message offers the sandbox: {stderr}"
    );
}

#[test]
fn invalid_variable_stops_startup() {
    let mut variables = REQUIRED.to_vec();
    variables.push(("FACEBOOK_TIMEOUT_SECS", "soon"));

    let output = run_binary(&[], &variables);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "exit code");
    assert!(
        stderr.contains("FACEBOOK_TIMEOUT_SECS"),
        "message names the variable: {stderr}"
    );
    assert!(
        !stderr.contains("test-secret-value"),
        "the secret is not printed: {stderr}"
    );
}

#[test]
fn help_and_version_exit_zero() {
    let help = run_binary(&["--help"], &[]);
    let version = run_binary(&["--version"], &[]);

    let help_text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "--help exits 0");
    assert!(
        help_text.contains("--sandbox"),
        "--help lists --sandbox: {help_text}"
    );
    assert!(version.status.success(), "--version exits 0");
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
        "--version prints the version"
    );
}

#[test]
fn sandbox_config_error_offers_no_sandbox() {
    let output = run_binary(&["--sandbox"], &[("PORT", "abc")]);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "exit code");
    assert!(stderr.contains("PORT"), "message names PORT: {stderr}");
    assert!(
        !stderr.contains("run with --sandbox"),
        "no advice to use what is in use: {stderr}"
    );
}
