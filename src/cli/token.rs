//! `flakehound token add|list|revoke`: the server's API tokens.

use std::io::Write;
use std::path::PathBuf;

use flakehound::error::{exit, Error, Result};
use flakehound::server::auth::{add_token, list_tokens, revoke_token, Scope};

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a random token, add its hash to the token file (created with mode 0600) and
    /// print the token on stdout. Only the hash is kept: copy the token now. A name already
    /// in the file is refused (exit 2). A running server accepts the new token after
    /// SIGHUP (or a restart).
    Add(AddArgs),
    /// List the tokens in the token file: name, scope and when each was made (never the
    /// token or its hash)
    List(ListArgs),
    /// Remove a token from the token file (exit 2 if no token has the name). A running
    /// server refuses it after SIGHUP (or a restart).
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The server's token file
    #[arg(long)]
    pub token_file: PathBuf,
    /// Print JSON (an array of {name, scope, created}) instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The token's name (as `token list` shows it)
    pub name: String,
    /// The server's token file
    #[arg(long)]
    pub token_file: PathBuf,
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
        TokenCommand::List(a) => {
            let tokens = list_tokens(&a.token_file)?;
            let text = if a.json {
                let mut s = serde_json::to_string_pretty(&tokens)
                    .map_err(|e| Error::Other(format!("cannot write JSON: {e}")))?;
                s.push('\n');
                s
            } else {
                let width = tokens
                    .iter()
                    .map(|t| t.name.len())
                    .max()
                    .unwrap_or(0)
                    .max(4);
                let mut s = format!("{:width$}  {:6}  CREATED\n", "NAME", "SCOPE");
                for t in &tokens {
                    s.push_str(&format!(
                        "{:width$}  {:6}  {}\n",
                        t.name,
                        t.scope,
                        t.created.as_deref().unwrap_or("-")
                    ));
                }
                s
            };
            out.write_all(text.as_bytes())
                .map_err(|e| Error::io("stdout", "cannot write", e))?;
            Ok(exit::OK)
        }
        TokenCommand::Revoke(a) => {
            revoke_token(&a.token_file, &a.name)?;
            eprintln!(
                "flakehound: token {:?} revoked; send SIGHUP to a running server (or restart it) to refuse it",
                a.name
            );
            Ok(exit::OK)
        }
    }
}
