//! Integration tests: the real router and the sandbox Facebook, over real
//! sockets on 127.0.0.1, driven by a real HTTP client.

mod callback_errors;
mod cors_and_headers;
mod hardening;
mod helpers;
mod login_flow;
mod sandbox_binary;
mod startup;
