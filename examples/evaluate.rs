//! Score simulated histories already ingested by `flakehound demo` against their truth,
//! without simulating again: `cargo run --release --example evaluate -- DIR...`
//! (each DIR holds `flakehound.db` and `truth.json`). Prints one JSON line per folder.

use flakehound::eval::evaluate;
use flakehound::score::{score, ScoreOptions};
use flakehound::sim::Truth;
use flakehound::store::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // RUST_LOG=debug lists the tests behind the figures (false fixes, missed fixes).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    for dir in std::env::args().skip(1) {
        let dir = std::path::Path::new(&dir);
        let truth: Truth = serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json"))?)?;
        let store = Store::open_read_only(&dir.join("flakehound.db"))?;
        let scored = score(&store, &ScoreOptions::default())?;
        let eval = evaluate(&scored, &truth);
        println!("{} {}", dir.display(), serde_json::to_string(&eval)?);
    }
    Ok(())
}
