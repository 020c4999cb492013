//! Bearer tokens: a file of `name scope blake3:<hash>` lines, compared in constant time.
//!
//! The file never holds a token, only its blake3 hash, so a leaked file grants nothing.
//! Lines starting with `#` and blank lines are ignored.

use std::io::Write;
use std::path::Path;

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// What a token may do. `Upload` implies `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Upload,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Upload => "upload",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "read" => Some(Scope::Read),
            "upload" => Some(Scope::Upload),
            _ => None,
        }
    }

    /// Whether a token of this scope may do what `needed` asks.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

/// One line of the token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub name: String,
    pub scope: Scope,
    hash: [u8; 32],
}

/// The tokens a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token, or one that matches no line: 401.
    Unauthenticated,
    /// A known token without the scope: 403.
    Forbidden,
}

/// The blake3 hash of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// A fresh random token: 256 bits from the OS generator, as `fhk_` and 64 hex digits.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut text = String::with_capacity(4 + 64);
    text.push_str("fhk_");
    for b in bytes {
        text.push_str(&format!("{b:02x}"));
    }
    text
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("blake3:").unwrap_or(text);
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TokenEntry {
    /// The line written to the token file.
    pub fn line(&self) -> String {
        format!(
            "{} {} blake3:{}",
            self.name,
            self.scope.as_str(),
            hex(&self.hash)
        )
    }
}

impl Tokens {
    /// Parse a token file's text; errors name the line.
    pub fn parse(text: &str, shown: &str) -> Result<Tokens> {
        let mut entries: Vec<TokenEntry> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| {
                Error::Usage(format!(
                    "{shown}:{}: {why} (expected `NAME SCOPE blake3:HASH`, SCOPE being upload or read)",
                    i + 1
                ))
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [name, scope, hash] = parts[..] else {
                return Err(bad("not three fields"));
            };
            if !valid_name(name) {
                return Err(bad("bad token name"));
            }
            let scope = Scope::parse(scope).ok_or_else(|| bad("unknown scope"))?;
            let hash = parse_hash(hash).ok_or_else(|| bad("bad hash: 64 hex digits expected"))?;
            if entries.iter().any(|e| e.name == name) {
                return Err(bad("duplicate token name"));
            }
            entries.push(TokenEntry {
                name: name.to_string(),
                scope,
                hash,
            });
        }
        Ok(Tokens { entries })
    }

    pub fn load(path: &Path) -> Result<Tokens> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(path, "cannot read the token file", e))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Check a presented token against every line, in constant time per line and without
    /// stopping at the first match, so timing tells nothing about which hash matched.
    pub fn check(&self, presented: Option<&str>, needed: Scope) -> Result<&str, Denied> {
        let Some(presented) = presented else {
            return Err(Denied::Unauthenticated);
        };
        let hash = hash_token(presented);
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&hash)) {
                found = Some(entry);
            }
        }
        match found {
            None => Err(Denied::Unauthenticated),
            Some(e) if e.scope.allows(needed) => Ok(&e.name),
            Some(_) => Err(Denied::Forbidden),
        }
    }
}

/// A token as `token list` shows it: never the secret, nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub scope: &'static str,
    /// When `token add` made it (RFC 3339), if the file says.
    pub created: Option<String>,
}

/// The comment `token add` writes above a token's line: `# NAME created TIME`.
fn created_comment(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim().strip_prefix('#')?;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    match parts[..] {
        [name, "created", at] => Some((name, at)),
        _ => None,
    }
}

/// The token file's name for messages, its text ("" when it does not exist yet) and the
/// exclusive lock every writer holds while it reads, changes and replaces the file.
struct Locked {
    /// The file itself (a symbolic link is followed, so the link stays).
    path: std::path::PathBuf,
    text: String,
    _lock: std::fs::File,
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

impl Locked {
    fn open(path: &Path) -> Result<Locked> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        // The lock is on a file beside it: the token file itself is replaced by rename,
        // and a lock on a replaced file would guard nothing.
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = private_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, "cannot open the token file's lock", e))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&lock_path, "cannot lock the token file", e.into()))?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(&path, "cannot read the token file", e)),
        };
        Ok(Locked {
            path,
            text,
            _lock: lock,
        })
    }

    fn tokens(&self) -> Result<Tokens> {
        Tokens::parse(&self.text, &self.path.display().to_string())
    }

    /// Replace the file whole: a temporary file (mode 0600) beside it, synced, then
    /// renamed over it, so a server reading it (SIGHUP) sees the old file or the new one.
    fn replace(&self, text: &str) -> Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let written = (|| {
            let mut f = private_options()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(&self.path, "cannot write the token file", e)
        })
    }
}

/// Make a token, add its line to the token file (created with mode 0600) and return it.
/// A name already in the file is refused (a usage error): revoke it first.
pub fn add_token(path: &Path, name: &str, scope: Scope) -> Result<String> {
    if !valid_name(name) {
        return Err(Error::Usage(format!(
            "bad token name {name:?}: use letters, digits, `-`, `_`, `.` or `@` (at most 64)"
        )));
    }
    let file = Locked::open(path)?;
    if file.tokens()?.entries.iter().any(|e| e.name == name) {
        return Err(Error::Usage(format!(
            "{}: a token named {name:?} exists already; `flakehound token revoke {name}` first to replace it",
            path.display()
        )));
    }
    let token = generate_token();
    let entry = TokenEntry {
        name: name.to_string(),
        scope,
        hash: hash_token(&token),
    };
    let mut text = file.text.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    text.push_str(&format!("# {name} created {created}\n{}\n", entry.line()));
    file.replace(&text)?;
    Ok(token)
}

/// The tokens in a token file, in file order.
pub fn list_tokens(path: &Path) -> Result<Vec<TokenInfo>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(path, "cannot read the token file", e))?;
    let tokens = Tokens::parse(&text, &path.display().to_string())?;
    let created: std::collections::HashMap<&str, &str> =
        text.lines().filter_map(created_comment).collect();
    Ok(tokens
        .entries
        .iter()
        .map(|e| TokenInfo {
            name: e.name.clone(),
            scope: e.scope.as_str(),
            created: created.get(e.name.as_str()).map(|t| t.to_string()),
        })
        .collect())
}

/// Remove a token's line (and its `created` comment). An unknown name is a usage error.
/// A running server stops accepting the token on SIGHUP (or restart).
pub fn revoke_token(path: &Path, name: &str) -> Result<()> {
    let file = Locked::open(path)?;
    if !file.tokens()?.entries.iter().any(|e| e.name == name) {
        return Err(Error::Usage(format!(
            "{}: no token named {name:?} (see `flakehound token list`)",
            path.display()
        )));
    }
    let mut text = String::with_capacity(file.text.len());
    for line in file.text.lines() {
        let trimmed = line.trim();
        let its_line = !trimmed.starts_with('#') && trimmed.split_whitespace().next() == Some(name);
        let its_comment = created_comment(line).is_some_and(|(n, _)| n == name);
        if !its_line && !its_comment {
            text.push_str(line);
            text.push('\n');
        }
    }
    file.replace(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_scopes() {
        let up = "fhk_upload";
        let rd = "fhk_read";
        let text = format!(
            "# comment\n\nci upload blake3:{}\ndash read {}\n",
            hex(&hash_token(up)),
            hex(&hash_token(rd))
        );
        let tokens = Tokens::parse(&text, "t").unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.check(Some(up), Scope::Upload), Ok("ci"));
        assert_eq!(tokens.check(Some(up), Scope::Read), Ok("ci"));
        assert_eq!(tokens.check(Some(rd), Scope::Read), Ok("dash"));
        assert_eq!(
            tokens.check(Some(rd), Scope::Upload),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            tokens.check(Some("nope"), Scope::Read),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            tokens.check(None, Scope::Read),
            Err(Denied::Unauthenticated)
        );
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = Tokens::parse("ci upload\n", "f").unwrap_err().to_string();
        assert!(err.starts_with("f:1:"), "{err}");
        let err = Tokens::parse("ci admin blake3:00\n", "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown scope"), "{err}");
    }

    #[test]
    fn add_list_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        let ci = add_token(&f, "ci", Scope::Upload).unwrap();
        let dash = add_token(&f, "dash", Scope::Read).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second `ci` is refused and the file is unchanged.
        let before = std::fs::read_to_string(&f).unwrap();
        let err = add_token(&f, "ci", Scope::Read).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::FAILURE);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), before);
        let listed = list_tokens(&f).unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|t| (t.name.as_str(), t.scope))
                .collect::<Vec<_>>(),
            [("ci", "upload"), ("dash", "read")]
        );
        assert!(listed
            .iter()
            .all(|t| t.created.as_deref().is_some_and(|c| c.ends_with('Z'))));
        // Never the secret or its hash.
        let shown = format!("{listed:?}");
        assert!(!shown.contains(&ci) && !shown.contains(&hex(&hash_token(&ci))));
        revoke_token(&f, "ci").unwrap();
        let tokens = Tokens::load(&f).unwrap();
        assert_eq!(
            tokens.check(Some(&ci), Scope::Read),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(tokens.check(Some(&dash), Scope::Read), Ok("dash"));
        assert!(!std::fs::read_to_string(&f).unwrap().contains("ci created"));
        let err = revoke_token(&f, "ci").unwrap_err();
        assert!(err.to_string().contains("no token named"), "{err}");
        // The name is free again.
        add_token(&f, "ci", Scope::Upload).unwrap();
        assert_eq!(list_tokens(&f).unwrap().len(), 2);
    }

    #[test]
    fn concurrent_adds_all_survive() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let f = f.clone();
                std::thread::spawn(move || add_token(&f, &format!("t{i}"), Scope::Read).unwrap())
            })
            .collect();
        let made: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let tokens = Tokens::load(&f).unwrap();
        assert_eq!(tokens.len(), 16);
        for (i, t) in made.iter().enumerate() {
            assert_eq!(
                tokens.check(Some(t), Scope::Read),
                Ok(format!("t{i}").as_str())
            );
        }
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 68);
        assert!(a.chars().all(|c| c.is_ascii_graphic()));
    }
}
