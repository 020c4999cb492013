mod cli;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: flakehound::alloc::Hybrid = flakehound::alloc::Hybrid;

fn main() -> ExitCode {
    let args = cli::Args::parse(); // clap exits 2 on bad usage
                                   // A server logs every request (info) by default; the other commands only warnings.
    let verbose = if matches!(args.command, cli::Command::Serve(_)) {
        args.verbose.max(1)
    } else {
        args.verbose
    };
    cli::init_tracing(verbose);
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // A closed pipe (`flakehound flaky | head`) is not an error.
            if let flakehound::error::Error::Io { source, .. } = &err {
                if source.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            let mut text = format!("error: {err}");
            let mut cause = std::error::Error::source(&err);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("{text}");
            ExitCode::from(err.exit_code())
        }
    }
}
