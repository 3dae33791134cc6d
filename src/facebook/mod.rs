//! The Facebook login flow: routes, the Graph API client and the login state.

pub mod graph;
pub mod login_state;
pub mod routes;

pub use routes::router;
