//! Facebook Login backend.
//!
//! A browser opens `/facebook/login`, logs in on Facebook, and comes back to
//! `/facebook/callback`, which returns `{"token_data": {...}, "pages": {"data": [...]}}`.
//!
//! # Layout
//! - [`config`]: the environment, read and validated once at start-up.
//! - [`error`]: the one error enum and its JSON shape.
//! - [`facebook`]: the login routes, the Graph API client and the signed login state.
//! - [`sandbox`]: a fake Facebook for trying the flow and for tests.
//! - [`server`]: the router with its middleware, and graceful shutdown.
//! - [`telemetry`]: logging and request ids.
//! - [`cli`]: command-line options.

pub mod cli;
pub mod config;
pub mod error;
pub mod facebook;
pub mod sandbox;
pub mod server;
pub mod telemetry;

pub use server::{build_app, serve};
