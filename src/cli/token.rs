//! `flakehound token add`: make an API token for the server.

use std::io::Write;
use std::path::PathBuf;

use flakehound::error::{exit, Error, Result};
use flakehound::server::auth::{add_token, Scope};

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a random token, append its hash to the token file (created with mode 0600) and
    /// print the token on stdout. Only the hash is kept: copy the token now. A running
    /// server reads the file at start: restart it to accept the new token.
    Add(AddArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    /// Upload reports and query
    Upload,
    /// Query only
    Read,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The token's name, shown in the server's debug log (letters, digits, - _ . @)
    #[arg(long)]
    pub name: String,
    /// What the token may do: `upload` reports, or only `read` the outputs
    #[arg(long, value_enum)]
    pub scope: ScopeArg,
    /// The server's token file
    #[arg(long)]
    pub token_file: PathBuf,
}

pub fn run(args: TokenArgs, out: &mut dyn Write) -> Result<u8> {
    match args.command {
        TokenCommand::Add(a) => {
            let scope = match a.scope {
                ScopeArg::Upload => Scope::Upload,
                ScopeArg::Read => Scope::Read,
            };
            let token = add_token(&a.token_file, &a.name, scope)?;
            writeln!(out, "{token}").map_err(|e| Error::io("stdout", "cannot write", e))?;
            Ok(exit::OK)
        }
    }
}
