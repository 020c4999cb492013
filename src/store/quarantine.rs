//! SQL of the quarantine: periods (`quarantine`) and their history (`quarantine_event`).
//! The rules (who is added, renewed or released) live in `crate::quarantine`.

use rusqlite::{params, Row};

use super::SqliteStore;
use crate::error::Result;

/// One quarantine period of a test in a job.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRow {
    pub quarantine_id: i64,
    pub test_id: i64,
    pub job: String,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub since: i64,
    pub until: i64,
    pub reason: String,
    pub retries_per_day: f64,
    pub flake_rate: f64,
    pub last_flake_at: Option<i64>,
    pub released_at: Option<i64>,
    pub release_reason: Option<String>,
}

/// One change of the quarantine.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineEventRow {
    pub at: i64,
    pub test_id: i64,
    pub job: String,
    pub classname: String,
    pub name: String,
    pub action: String,
    pub reason: String,
    pub until: Option<i64>,
}

/// A change to write: the new state of a period (insert when `quarantine_id` is 0) and
/// its event.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineChange {
    pub row: QuarantineRow,
    pub event: QuarantineEventRow,
}

const COLUMNS: &str = "quarantine_id, test_id, job, classname, name, file, since, until, reason,
     retries_per_day, flake_rate, last_flake_at, released_at, release_reason";

fn quarantine_row(r: &Row<'_>) -> rusqlite::Result<QuarantineRow> {
    Ok(QuarantineRow {
        quarantine_id: r.get(0)?,
        test_id: r.get(1)?,
        job: r.get(2)?,
        classname: r.get(3)?,
        name: r.get(4)?,
        file: r.get(5)?,
        since: r.get(6)?,
        until: r.get(7)?,
        reason: r.get(8)?,
        retries_per_day: r.get(9)?,
        flake_rate: r.get(10)?,
        last_flake_at: r.get(11)?,
        released_at: r.get(12)?,
        release_reason: r.get(13)?,
    })
}

impl SqliteStore {
    /// Every quarantine period, active and released, oldest first.
    pub fn quarantine_rows(&self) -> Result<Vec<QuarantineRow>> {
        let sql =
            format!("SELECT {COLUMNS} FROM quarantine ORDER BY since, job, test_id, quarantine_id");
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(|e| self.err("cannot read the quarantine", e))?;
        let rows = stmt
            .query_map([], quarantine_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err("cannot read the quarantine", e))?;
        Ok(rows)
    }

    /// The quarantine history, in the order it happened.
    pub fn quarantine_events(&self) -> Result<Vec<QuarantineEventRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at, test_id, job, classname, name, action, reason, until
                 FROM quarantine_event ORDER BY at, event_id",
            )
            .map_err(|e| self.err("cannot read the quarantine history", e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(QuarantineEventRow {
                    at: r.get(0)?,
                    test_id: r.get(1)?,
                    job: r.get(2)?,
                    classname: r.get(3)?,
                    name: r.get(4)?,
                    action: r.get(5)?,
                    reason: r.get(6)?,
                    until: r.get(7)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err("cannot read the quarantine history", e))?;
        Ok(rows)
    }

    /// Write changes in one transaction: all of them or none.
    pub fn apply_quarantine_changes(&mut self, changes: &[QuarantineChange]) -> Result<()> {
        let path = self.path.clone();
        let err = |context: &str, e: rusqlite::Error| super::db_error(&path, context, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| err("cannot start a write transaction", e))?;
        for c in changes {
            let r = &c.row;
            if r.quarantine_id == 0 {
                tx.execute(
                    "INSERT INTO quarantine (test_id, job, classname, name, file, since, until,
                        reason, retries_per_day, flake_rate, last_flake_at, released_at, release_reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![
                        r.test_id,
                        r.job,
                        r.classname,
                        r.name,
                        r.file,
                        r.since,
                        r.until,
                        r.reason,
                        r.retries_per_day,
                        r.flake_rate,
                        r.last_flake_at,
                        r.released_at,
                        r.release_reason
                    ],
                )
                .map_err(|e| err("cannot add to the quarantine", e))?;
            } else {
                tx.execute(
                    "UPDATE quarantine SET until = ?2, reason = ?3, retries_per_day = ?4,
                        flake_rate = ?5, last_flake_at = ?6, released_at = ?7, release_reason = ?8
                     WHERE quarantine_id = ?1",
                    params![
                        r.quarantine_id,
                        r.until,
                        r.reason,
                        r.retries_per_day,
                        r.flake_rate,
                        r.last_flake_at,
                        r.released_at,
                        r.release_reason
                    ],
                )
                .map_err(|e| err("cannot update the quarantine", e))?;
            }
            let e = &c.event;
            tx.execute(
                "INSERT INTO quarantine_event (at, test_id, job, classname, name, action, reason, until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![e.at, e.test_id, e.job, e.classname, e.name, e.action, e.reason, e.until],
            )
            .map_err(|e| err("cannot record a quarantine event", e))?;
        }
        tx.commit()
            .map_err(|e| err("cannot commit the quarantine", e))?;
        Ok(())
    }
}
