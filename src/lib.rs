//! flakehound: a flaky-test detection engine.
//!
//! The modules follow the pipeline: [`junit`] parses reports, [`store`] keeps them in
//! SQLite, [`score`] tells flaky from broken, [`impact`] estimates what a fix saves, and
//! [`report`] and [`quarantine`] publish the results.

pub mod alloc;
pub mod api;
pub mod backlog;
pub mod ci_env;
pub mod codeowners;
pub mod error;
pub mod escape;
pub mod eval;
pub mod fingerprint;
pub mod gate;
pub mod ingest;
pub mod junit;
pub mod links;
pub mod model;
pub mod quarantine;
pub mod report;
pub mod score;
pub mod server;
pub mod sim;
pub mod store;
pub mod timefmt;
