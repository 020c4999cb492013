//! `flakehound simulate` and `flakehound demo`: a realistic CI history with known truth,
//! and the whole pipeline run on it.

use std::io::Write;
use std::path::{Path, PathBuf};

use flakehound::api::{self, Endpoint};
use flakehound::error::{exit, Error, Result};
use flakehound::ingest::ingest;
use flakehound::score::{score, ScoreOptions};
use flakehound::sim::{simulate, SimConfig};
use flakehound::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// 30 days, several jobs and dialects
    Demo,
    /// A few days, a few dozen tests
    Small,
    /// One job, compact reports: --runs × --tests
    Bench,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Folder to write runs.csv, reports/ and truth.json into
    #[arg(long)]
    pub out: PathBuf,
    /// Which simulated history: the 30-day demo, a small one, or the bench (--runs × --tests)
    #[arg(long, value_enum, default_value = "demo")]
    pub preset: Preset,
    /// Random seed: the same seed writes the same history
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// A JSON SimConfig instead of a preset
    #[arg(long, conflicts_with = "preset")]
    pub config: Option<PathBuf>,
    /// Runs, for --preset bench
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    /// Tests per run, for --preset bench
    #[arg(long, default_value_t = 800)]
    pub tests: usize,
}

fn config(args: &SimulateArgs) -> Result<SimConfig> {
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(path, "cannot read the simulation config", e))?;
        return serde_json::from_str(&text)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())));
    }
    Ok(match args.preset {
        Preset::Demo => SimConfig::demo(args.seed),
        Preset::Small => SimConfig::small(args.seed),
        Preset::Bench => SimConfig::bench(args.runs, args.tests, args.seed),
    })
}

pub fn simulate_cmd(args: SimulateArgs, out: &mut dyn Write) -> Result<u8> {
    let cfg = config(&args)?;
    let sim = simulate(&cfg, &args.out)
        .map_err(|e| Error::io(&args.out, "cannot write the simulation", e))?;
    writeln!(
        out,
        "wrote {} runs, {} test results in {} files ({:.1} MB) to {}; ingest with: flakehound ingest --manifest {}",
        sim.runs,
        sim.results,
        sim.files,
        sim.bytes as f64 / 1e6,
        args.out.display(),
        args.out.join("runs.csv").display()
    )
    .map_err(|e| Error::io("stdout", "cannot write", e))?;
    Ok(exit::OK)
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder for the simulated history, the database and the outputs
    #[arg(long, default_value = "flakehound-demo")]
    pub dir: PathBuf,
    /// Random seed: the same seed simulates the same history
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Fix a third of the flaky tests part-way and start some flakiness part-way
    #[arg(long)]
    pub churn: bool,
    /// How often failed jobs are re-run: dense (85–90%, nightlies), sparse (15%, none) or
    /// rare (10–20%, no nightly and no in-run reruns)
    #[arg(long, value_enum, default_value = "dense")]
    pub retries: RetryPolicy,
    /// Days of history to simulate (default: the preset's 30)
    #[arg(long)]
    pub days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RetryPolicy {
    Dense,
    Sparse,
    Rare,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, "cannot write", e))
}

pub fn demo(args: DemoArgs, out: &mut dyn Write) -> Result<u8> {
    let w = |out: &mut dyn Write, text: String| {
        out.write_all(text.as_bytes())
            .map_err(|e| Error::io("stdout", "cannot write", e))
    };
    let started = std::time::Instant::now();
    let mut cfg = if args.churn {
        SimConfig::churn(args.seed)
    } else {
        SimConfig::demo(args.seed)
    };
    cfg = match args.retries {
        RetryPolicy::Dense => cfg,
        RetryPolicy::Sparse => cfg.sparse(),
        RetryPolicy::Rare => cfg.rare(),
    };
    if let Some(days) = args.days {
        if days == 0 {
            return Err(Error::Usage("--days must be at least 1".into()));
        }
        cfg.days = days;
    }
    let sim = simulate(&cfg, &args.dir)
        .map_err(|e| Error::io(&args.dir, "cannot write the simulation", e))?;
    w(
        out,
        format!(
            "simulated {:.0} days of CI: {} job attempts, {} test results, {} report files in {}\n",
            sim.truth.days,
            sim.runs,
            sim.results,
            sim.files,
            args.dir.display()
        ),
    )?;

    let db = args.dir.join("flakehound.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let manifest = args.dir.join("runs.csv");
    let (runs, rejected) = super::ingest::read_manifest(&manifest)?;
    let mut store = Store::open(&db)?;
    let (summary, more) = ingest(&mut store, &runs, None)?;
    drop(store);
    w(out, format!("ingested: {}\n", summary.line()))?;
    if !rejected.is_empty() || !more.is_empty() {
        return Err(Error::Other(format!(
            "the simulated history had rejected reports: {:?}",
            rejected.iter().chain(&more).next()
        )));
    }

    let store = Store::open_read_only(&db)?;
    let scored = score(&store, &ScoreOptions::default())?;
    let eval = flakehound::eval::evaluate(&scored, &sim.truth);
    w(out, "\n".to_string())?;
    let table = api::render(&db, Endpoint::Flaky, &[("format".into(), "table".into())])
        .map_err(|e| Error::Other(e.to_string()))?;
    let text = String::from_utf8_lossy(&table.body);
    let lines: Vec<&str> = text.lines().collect();
    for line in lines.iter().take(18) {
        w(out, format!("{line}\n"))?;
    }
    if lines.len() > 18 {
        w(
            out,
            format!(
                "… {} more in `flakehound --db {} flaky`\n",
                lines.len() - 18,
                db.display()
            ),
        )?;
    }

    let outputs: [(Endpoint, &str, &str); 5] = [
        (Endpoint::Backlog, "csv", "backlog.csv"),
        (Endpoint::Backlog, "md", "backlog.md"),
        (Endpoint::Report, "md", "report.md"),
        (Endpoint::Report, "html", "report.html"),
        (Endpoint::Report, "json", "report.json"),
    ];
    for (endpoint, format, file) in outputs {
        let r = api::render(&db, endpoint, &[("format".into(), format.into())])
            .map_err(|e| Error::Other(e.to_string()))?;
        write_file(&args.dir.join(file), &r.body)?;
    }
    let backlog = std::fs::read_to_string(args.dir.join("backlog.csv")).unwrap_or_default();
    w(out, "\nbacklog (top 5):\n".to_string())?;
    for line in backlog.lines().take(6) {
        w(out, format!("  {line}\n"))?;
    }
    w(
        out,
        format!(
            "\nagainst the simulator's truth: precision {:.2} ({} of {} flagged are flaky, {} breakages flagged), recall {:.2} of {} flaky tests that flaked; \
             retries/day estimate vs truth: Spearman {:.2}, total {:.1} vs {:.1} ({:+.0}%)\n",
            eval.precision,
            eval.true_positives,
            eval.flagged,
            eval.breakages_flagged,
            eval.recall,
            eval.observable_flaky,
            eval.spearman,
            eval.estimated_retries_per_day,
            eval.true_retries_per_day,
            eval.total_error * 100.0
        ),
    )?;
    w(
        out,
        format!(
            "fixed: {} scored fixed, {} of them still flaky; found {} of {} real fixes with ≥ 4 expected failures after them\n",
            eval.scored_fixed, eval.false_fixed, eval.fixes_found, eval.visible_fixes
        ),
    )?;
    w(
        out,
        format!(
            "wrote {dir}/report.html, report.md, report.json, backlog.csv, backlog.md in {:.1} s; explore with `flakehound --db {db} flaky|show|backlog|report|quarantine`\n",
            started.elapsed().as_secs_f64(),
            dir = args.dir.display(),
            db = db.display()
        ),
    )?;
    Ok(exit::OK)
}
