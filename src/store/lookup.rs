//! Small lookups that keep user input honest: commit SHAs in one form, and the jobs and
//! branches that exist (so a misspelt `--job` is named, not answered with nothing).

use rusqlite::{params, Connection};

use super::SqliteStore;
use crate::error::Result;

/// Shortest commit prefix resolved to a stored full SHA (git's default abbreviation).
pub(super) const MIN_PREFIX: usize = 7;

/// A commit as stored: a hex SHA in lower case, surrounding blanks removed. Anything
/// else (an SVN revision, a label) is kept as given.
pub fn normalize_commit(commit: &str) -> String {
    let c = commit.trim();
    if !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit()) {
        c.to_ascii_lowercase()
    } else {
        c.to_string()
    }
}

pub(super) fn is_full_sha(c: &str) -> bool {
    (c.len() == 40 || c.len() == 64) && c.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The normalised commit, with a short SHA replaced by the one stored full SHA of the job
/// it prefixes (when exactly one does; otherwise it stays as given).
pub(super) fn full_commit_on(
    conn: &Connection,
    job: &str,
    commit: &str,
) -> rusqlite::Result<String> {
    let c = normalize_commit(commit);
    if c.len() < MIN_PREFIX || is_full_sha(&c) || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(c);
    }
    // A range scan of the (job, commit_sha) index: prefix <= sha < prefix + 'g'.
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT commit_sha FROM run
         WHERE job = ?1 AND commit_sha >= ?2 AND commit_sha < ?3 LIMIT 3",
    )?;
    let upper = format!("{c}g");
    let found: Vec<String> = stmt
        .query_map(params![job, c, upper], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let full: Vec<&String> = found.iter().filter(|f| is_full_sha(f)).collect();
    Ok(match full.as_slice() {
        [one] => (*one).clone(),
        _ => c,
    })
}

impl SqliteStore {
    /// See [`full_commit_on`]: the form a commit is stored and queried in.
    pub fn full_commit(&self, job: &str, commit: &str) -> Result<String> {
        full_commit_on(&self.conn, job, commit).map_err(|e| self.err("cannot look up commits", e))
    }

    /// Every job with a stored run, sorted.
    pub fn jobs(&self) -> Result<Vec<String>> {
        self.distinct("SELECT DISTINCT job FROM run ORDER BY job")
    }

    /// Every branch with a stored run, sorted.
    pub fn branches(&self) -> Result<Vec<String>> {
        self.distinct("SELECT DISTINCT branch FROM run ORDER BY branch")
    }

    fn distinct(&self, sql: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| self.err("cannot read runs", e))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|e| self.err("cannot read runs", e))?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunMeta;
    use crate::store::Store;

    fn run(store: &mut Store, job: &str, commit: &str) -> String {
        let mut b = store.batch().unwrap();
        let meta = RunMeta {
            commit: commit.into(),
            branch: "main".into(),
            job: job.into(),
            run_id: format!("{job}-{commit}"),
            attempt: 1,
            started_at: 1_700_000_000,
            duration_s: None,
            run_url: None,
        };
        b.run(&meta).unwrap();
        b.commit().unwrap();
        store
            .runs(&Default::default())
            .unwrap()
            .into_iter()
            .find(|r| r.run_id == meta.run_id)
            .unwrap()
            .commit
    }

    #[test]
    fn commits_are_lower_case_and_short_shas_resolve_when_unambiguous() {
        let mut s = Store::open_in_memory().unwrap();
        let full = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
        assert_eq!(run(&mut s, "unit", &full.to_uppercase()), full);
        assert_eq!(run(&mut s, "unit", " 1A2B3C4 "), full);
        assert_eq!(s.full_commit("unit", "1a2b3c4d").unwrap(), full);
        // Another job's commits are not this job's.
        assert_eq!(s.full_commit("lint", "1a2b3c4").unwrap(), "1a2b3c4");
        // Too short, or ambiguous: kept as given (lower case).
        assert_eq!(s.full_commit("unit", "1A2B").unwrap(), "1a2b");
        run(&mut s, "unit", "1a2b3c4fffffffffffffffffffffffffffffffff");
        assert_eq!(s.full_commit("unit", "1a2b3c4").unwrap(), "1a2b3c4");
        assert_eq!(normalize_commit("r1234"), "r1234");
        assert_eq!(s.jobs().unwrap(), vec!["unit".to_string()]);
        assert_eq!(s.branches().unwrap(), vec!["main".to_string()]);
        // A short SHA stored before its full form arrives becomes that commit, in its job only.
        let other = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
        assert_eq!(run(&mut s, "unit", "9F8E7D6"), "9f8e7d6");
        assert_eq!(run(&mut s, "lint", "9f8e7d6c"), "9f8e7d6c");
        assert_eq!(run(&mut s, "unit", "9f8e7d6c5b"), "9f8e7d6c5b");
        assert_eq!(run(&mut s, "unit", other), other);
        let commits = |job: &str| -> Vec<String> {
            s.runs(&Default::default())
                .unwrap()
                .into_iter()
                .filter(|r| r.job == job && r.commit.starts_with("9f8e"))
                .map(|r| r.commit)
                .collect()
        };
        assert_eq!(commits("unit"), [other; 3]);
        assert_eq!(commits("lint"), ["9f8e7d6c"]);
    }
}
