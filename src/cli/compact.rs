//! `compact`: roll the closed days up into the daily aggregate now. `ingest` and `serve`
//! do it as days close; this is for a database written by an older version, or after a
//! backfill of late re-runs into old days. It also removes what a killed first backfill
//! left beside the database (see `Store::sweep_unfinished_builds`).

use std::io::Write;
use std::path::Path;

use flakehound::error::{exit, Error, Result};
use flakehound::store::Store;

#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// Also roll up the last two days (they stay open for late uploads by default; a later write to them marks them pending again)
    #[arg(long)]
    pub all: bool,
}

pub fn run(db: &Path, args: CompactArgs, out: &mut dyn Write) -> Result<u8> {
    let mut store = Store::open(db)?;
    Store::sweep_unfinished_builds(db);
    let started = std::time::Instant::now();
    let rolled = if args.all {
        store.rollup(i64::MAX)?
    } else {
        store.rollup_closed()?
    };
    let pending = store.pending_days()?.map_or(0, |d| d.len());
    writeln!(
        out,
        "rolled up {rolled} days in {:.2} s; {pending} days read raw until they close",
        started.elapsed().as_secs_f64()
    )
    .map_err(|e| Error::io("stdout", "cannot write", e))?;
    Ok(exit::OK)
}
