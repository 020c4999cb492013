//! The command line: argument parsing and one module per subcommand. Binary only, so
//! clap stays out of the library.

mod compact;
mod demo;
mod gate;
mod ingest;
mod output;
mod query;
mod serve;
mod stored;
mod token;
mod upload;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use flakehound::error::Result;

/// Flaky-test detection: ingest JUnit XML, tell flaky from broken on the same commit,
/// estimate what fixing each flaky test saves, and publish a backlog.
#[derive(Debug, Parser)]
#[command(name = "flakehound", version, about, long_about = None)]
pub struct Args {
    /// SQLite database file, or a PostgreSQL URL (postgresql://…)
    #[arg(
        long,
        global = true,
        env = "FLAKEHOUND_DB",
        default_value = "flakehound.db"
    )]
    pub db: PathBuf,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate 30 days of CI, ingest it, and print the flaky list, backlog and report
    Demo(demo::DemoArgs),
    /// Write a simulated CI history (reports, runs.csv manifest, truth.json)
    Simulate(demo::SimulateArgs),
    /// Store a run's JUnit reports (or backfill runs from a manifest)
    Ingest(ingest::IngestArgs),
    /// After the tests ran: exit 0 when every failure is a known flaky or quarantined test of this job, else 1
    Gate(gate::GateArgs),
    /// List the ingested runs
    Runs(stored::ListArgs),
    /// List the tests with their pass, fail and skip counts
    Tests(stored::ListArgs),
    /// List the flaky tests, highest impact first
    Flaky(query::FlakyArgs),
    /// One test's status, evidence and recent history
    Show(query::ShowArgs),
    /// The improvement backlog: one row per flaky test, highest impact first
    Backlog(query::BacklogArgs),
    /// The nightly flake report (Markdown, HTML or JSON)
    Report(query::ReportArgs),
    /// The quarantine list, in the syntax of a test runner
    Quarantine(query::QuarantineArgs),
    /// Run the upload server: CI jobs post reports, and query the outputs over HTTP
    Serve(serve::ServeArgs),
    /// Send a run's reports to a `flakehound serve` server (a CI post-step)
    Upload(upload::UploadArgs),
    /// Manage the server's API tokens
    Token(token::TokenArgs),
    /// Roll closed days up into the daily aggregate now (ingest and serve do it as days close)
    Compact(compact::CompactArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell to write the script for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `flakehound man > flakehound.1`
    Man,
}

pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only for a person: escape codes in a CI log file or a pipe are noise.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .try_init();
}

/// A progress bar on stderr, only for people: hidden when stderr is not a terminal or CI=true.
pub fn progress_bar(total: u64, what: &'static str) -> Option<indicatif::ProgressBar> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if in_ci || !std::io::stderr().is_terminal() || total < 2 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} files ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what);
    Some(bar)
}

pub fn run(args: Args) -> Result<u8> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match args.command {
        Command::Demo(a) => demo::demo(a, &mut out)?,
        Command::Simulate(a) => demo::simulate_cmd(a, &mut out)?,
        Command::Ingest(a) => ingest::run(&args.db, a, &mut out)?,
        Command::Gate(a) => gate::run(&args.db, a, &mut out)?,
        Command::Runs(a) => stored::runs(&args.db, a, &mut out)?,
        Command::Tests(a) => stored::tests(&args.db, a, &mut out)?,
        Command::Flaky(a) => query::flaky(&args.db, a, &mut out)?,
        Command::Show(a) => query::show(&args.db, a, &mut out)?,
        Command::Backlog(a) => query::backlog(&args.db, a, &mut out)?,
        Command::Report(a) => query::report(&args.db, a, &mut out)?,
        Command::Quarantine(a) => query::quarantine(&args.db, a, &mut out)?,
        Command::Serve(a) => serve::run(&args.db, a)?,
        Command::Upload(a) => upload::run(a, &mut out)?,
        Command::Token(a) => token::run(a, &mut out)?,
        Command::Compact(a) => compact::run(&args.db, a, &mut out)?,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Args::command(), "flakehound", &mut out);
            flakehound::error::exit::OK
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Args::command())
                .render(&mut out)
                .map_err(|e| flakehound::error::Error::io("stdout", "cannot write", e))?;
            flakehound::error::exit::OK
        }
    };
    out.flush()
        .map_err(|e| flakehound::error::Error::io("stdout", "cannot write", e))?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every flag and argument of every subcommand says what it does in `--help`.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>, seen: &mut usize) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                *seen += 1;
                let help = arg.get_help().or(arg.get_long_help());
                if help.is_none_or(|h| h.to_string().trim().is_empty()) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing, seen);
            }
        }
        let cmd = super::Args::command();
        cmd.clone().debug_assert();
        let (mut missing, mut seen) = (Vec::new(), 0);
        walk(&cmd, "flakehound", &mut missing, &mut seen);
        assert!(seen > 60, "only {seen} arguments walked");
        assert!(
            missing.is_empty(),
            "arguments without help text: {missing:#?}"
        );
    }
}
