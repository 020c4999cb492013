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

/// Make a token, append its line to the token file (created with mode 0600) and return it.
pub fn add_token(path: &Path, name: &str, scope: Scope) -> Result<String> {
    if !valid_name(name) {
        return Err(Error::Usage(format!(
            "bad token name {name:?}: use letters, digits, `-`, `_`, `.` or `@` (at most 64)"
        )));
    }
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Tokens::parse(&text, &path.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tokens::default(),
        Err(e) => return Err(Error::io(path, "cannot read the token file", e)),
    };
    if existing.entries.iter().any(|e| e.name == name) {
        return Err(Error::Usage(format!(
            "{}: a token named {name:?} exists already; remove its line to replace it",
            path.display()
        )));
    }
    let token = generate_token();
    let entry = TokenEntry {
        name: name.to_string(),
        scope,
        hash: hash_token(&token),
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::io(path, "cannot open the token file", e))?;
    let mut line = entry.line();
    line.push('\n');
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(path, "cannot write the token file", e))?;
    Ok(token)
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
    fn generated_tokens_are_long_and_distinct() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 68);
        assert!(a.chars().all(|c| c.is_ascii_graphic()));
    }
}
