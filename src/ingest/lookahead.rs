//! Parse report files ahead of the writer, on worker threads, and hand them over in order.
//!
//! Workers take the next file as soon as they finish one: there is no barrier at the end
//! of a chunk, where one worker would wait (spinning, then asleep) for the slowest file
//! of the chunk while the writer waits for the chunk. The writer gets files back in
//! their given order (a run's files stay together, and the store's keys follow the
//! input), and how far the workers may run ahead is bounded in files and in parsed test
//! cases, so that memory stays bounded whatever the writer's pace.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::Scope;

use super::{parse_one, ParsedFile, CHUNK_CASES, MAX_CHUNK_FILES};

/// Parsed files not yet handed to the writer, at most.
const AHEAD_FILES: usize = 2 * MAX_CHUNK_FILES;
/// Parsed test cases not yet handed to the writer, at most (about 40–80 MB).
const AHEAD_CASES: usize = 2 * CHUNK_CASES;

/// Files a worker claims at a time.
const CLAIM_FILES: usize = 16;
/// Parsed test cases a worker sends at once, at most (more when one file has more).
const SEND_CASES: usize = CHUNK_CASES / 8;

/// A file to read: its run's index in the input, its path, and whether it was found by
/// searching a folder (another tool's XML is then skipped, not rejected).
pub(super) type FileToRead<'a> = (usize, &'a Path, bool);

/// What the writer has taken, shared with the workers so they know how far they may go.
#[derive(Default)]
struct Window {
    state: Mutex<WindowState>,
    moved: Condvar,
}

#[derive(Default)]
struct WindowState {
    /// Files handed to the writer: the index of the next one it needs.
    handed: usize,
    /// Test cases parsed and not yet handed.
    cases_ahead: usize,
    /// The writer is gone (finished, or stopped on an error): workers stop.
    stopped: bool,
}

impl Window {
    /// Wait until file `i` may be parsed; false when the writer is gone. The file the
    /// writer needs next may always be parsed, so the wait cannot deadlock.
    fn wait_for_room(&self, i: usize) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !s.stopped
            && i != s.handed
            && (i >= s.handed + AHEAD_FILES || s.cases_ahead >= AHEAD_CASES)
        {
            s = self.moved.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        !s.stopped
    }

    /// Whether file `i` may be parsed now (or the writer is gone).
    fn has_room(&self, i: usize) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.stopped || i == s.handed || (i < s.handed + AHEAD_FILES && s.cases_ahead < AHEAD_CASES)
    }

    fn parsed(&self, cases: usize) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cases_ahead += cases;
    }

    fn handed(&self, files: usize, cases: usize) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.handed += files;
        s.cases_ahead -= cases;
        drop(s);
        self.moved.notify_all();
    }

    fn stop(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stopped = true;
        self.moved.notify_all();
    }
}

/// The writer's end: parsed files in their given order, a chunk at a time.
pub(super) struct Lookahead<'a> {
    files: &'a [FileToRead<'a>],
    /// `None` when there are no workers: files are parsed as they are asked for.
    parsed: Option<Receiver<(usize, Vec<ParsedFile>)>>,
    window: Arc<Window>,
    /// Files parsed out of order, from index `handed` on.
    waiting: VecDeque<Option<ParsedFile>>,
    handed: usize,
}

impl<'a> Lookahead<'a> {
    /// Start `workers` threads in `scope` parsing `files`. With no workers, the writer's
    /// thread parses each file when it asks for it (one report: no thread would help).
    pub(super) fn start<'scope>(
        scope: &'scope Scope<'scope, 'a>,
        files: &'a [FileToRead<'a>],
        workers: usize,
    ) -> Lookahead<'a> {
        let window = Arc::new(Window::default());
        let parsed = (workers > 0).then(|| {
            let (tx, rx) = channel();
            let next = Arc::new(AtomicUsize::new(0));
            for _ in 0..workers {
                let (tx, next, window) = (tx.clone(), next.clone(), window.clone());
                scope.spawn(move || {
                    // A worker claims a few files at a time and sends them together: a
                    // message per file would wake the writer for each one.
                    let mut batch: Vec<ParsedFile> = Vec::with_capacity(CLAIM_FILES);
                    let mut batch_cases = 0;
                    loop {
                        let first = next.fetch_add(CLAIM_FILES, Ordering::Relaxed);
                        let claimed = files.get(first..).unwrap_or_default();
                        if claimed.is_empty() {
                            return;
                        }
                        for (k, &(run, path, found)) in claimed.iter().take(CLAIM_FILES).enumerate()
                        {
                            let i = first + k;
                            if !window.has_room(i) {
                                // The writer may be waiting for the files held here.
                                if !batch.is_empty()
                                    && tx
                                        .send((i - batch.len(), std::mem::take(&mut batch)))
                                        .is_err()
                                {
                                    return;
                                }
                                batch_cases = 0;
                                if !window.wait_for_room(i) {
                                    return;
                                }
                            }
                            let parsed = parse_one(path, found);
                            let cases = parsed.cases();
                            window.parsed(cases);
                            batch_cases += cases;
                            batch.push(ParsedFile {
                                run,
                                path: path.to_path_buf(),
                                parsed,
                            });
                            if batch_cases >= SEND_CASES {
                                let start = i + 1 - batch.len();
                                if tx.send((start, std::mem::take(&mut batch))).is_err() {
                                    return; // the writer stopped on an error
                                }
                                batch_cases = 0;
                            }
                        }
                        if !batch.is_empty() {
                            let start = (first + CLAIM_FILES).min(files.len()) - batch.len();
                            if tx.send((start, std::mem::take(&mut batch))).is_err() {
                                return;
                            }
                            batch_cases = 0;
                        }
                    }
                });
            }
            rx
        });
        Lookahead {
            files,
            parsed,
            window,
            waiting: VecDeque::new(),
            handed: 0,
        }
    }

    /// The next files in order: at least one, as many as are parsed already (up to a
    /// chunk's worth); `None` when all were handed.
    pub(super) fn next_chunk(&mut self) -> Option<Vec<ParsedFile>> {
        if self.handed == self.files.len() {
            return None;
        }
        let Some(rx) = &self.parsed else {
            let (run, path, found) = self.files[self.handed];
            self.handed += 1;
            return Some(vec![ParsedFile {
                run,
                path: path.to_path_buf(),
                parsed: parse_one(path, found),
            }]);
        };
        // Block for the next file only; then take whatever else has arrived.
        while !matches!(self.waiting.front(), Some(Some(_))) {
            match rx.recv() {
                Ok((i, files)) => place(&mut self.waiting, i - self.handed, files),
                // Every worker is gone without the file: one panicked. Its panic is
                // raised when the scope joins it.
                Err(_) => return None,
            }
        }
        while let Ok((i, files)) = rx.try_recv() {
            place(&mut self.waiting, i - self.handed, files);
        }
        let mut chunk = Vec::new();
        let mut cases = 0;
        while chunk.len() < MAX_CHUNK_FILES && cases < CHUNK_CASES {
            match self.waiting.front() {
                Some(Some(_)) => {}
                _ => break,
            }
            let file = self.waiting.pop_front().flatten().expect("checked above");
            cases += file.parsed.cases();
            chunk.push(file);
        }
        self.handed += chunk.len();
        self.window.handed(chunk.len(), cases);
        Some(chunk)
    }
}

/// Put consecutive files, the first `at` places after the next one the writer needs.
fn place(waiting: &mut VecDeque<Option<ParsedFile>>, at: usize, files: Vec<ParsedFile>) {
    if waiting.len() < at + files.len() {
        waiting.resize_with(at + files.len(), || None);
    }
    for (k, file) in files.into_iter().enumerate() {
        waiting[at + k] = Some(file);
    }
}

impl Drop for Lookahead<'_> {
    /// Workers waiting for room must not outlive the writer (the scope joins them).
    fn drop(&mut self) {
        self.window.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Parsed;
    use std::path::PathBuf;
    use std::time::Duration;

    /// Reports of `cases` test cases each, named by their index.
    fn reports(dir: &Path, cases: &[usize]) -> Vec<PathBuf> {
        cases
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let mut xml = format!("<testsuite name=\"s{i}\">");
                for k in 0..n {
                    xml.push_str(&format!("<testcase classname=\"c{i}\" name=\"t{k}\"/>"));
                }
                xml.push_str("</testsuite>");
                let path = dir.join(format!("{i}.xml"));
                std::fs::write(&path, xml).unwrap();
                path
            })
            .collect()
    }

    /// Run `f` on another thread and fail if it has not finished within a minute: a
    /// worker left waiting would otherwise hang the test.
    fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the look-ahead did not finish: a worker is stuck")
    }

    /// Files come back in their given order, each once, however the workers race
    /// (files of very different sizes, claimed in blocks, sent in batches).
    #[test]
    fn files_are_handed_over_in_their_given_order() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<usize> = (0..300).map(|i| [1, 40, 0, 3_000, 7][i % 5]).collect();
        let paths = reports(dir.path(), &cases);
        for workers in [0, 1, 3] {
            let paths = paths.clone();
            let cases = cases.clone();
            within_a_minute(move || {
                let files: Vec<FileToRead<'_>> = paths
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (i, p.as_path(), false))
                    .collect();
                let mut seen = Vec::new();
                std::thread::scope(|scope| {
                    let mut ahead = Lookahead::start(scope, &files, workers);
                    while let Some(chunk) = ahead.next_chunk() {
                        assert!(!chunk.is_empty());
                        assert!(chunk.len() <= MAX_CHUNK_FILES);
                        for f in chunk {
                            let n = match &f.parsed {
                                Parsed::Whole { report, .. } => report.cases.len(),
                                _ => panic!("{} not parsed whole", f.path.display()),
                            };
                            seen.push((f.run, n));
                        }
                    }
                });
                let want: Vec<(usize, usize)> = cases.iter().copied().enumerate().collect();
                assert_eq!(seen, want, "with {workers} workers");
            });
        }
    }

    /// A writer that stops early (a database error) lets the workers go, even those
    /// waiting for room; and they never run further ahead than the window allows.
    #[test]
    fn workers_stop_when_the_writer_stops_and_stay_within_the_window() {
        let n = AHEAD_FILES * 3;
        within_a_minute(move || {
            let dir = tempfile::tempdir().unwrap();
            // Files that do not exist are rejected at once: the workers race ahead.
            let paths: Vec<PathBuf> = (0..n).map(|i| dir.path().join(format!("{i}"))).collect();
            let files: Vec<FileToRead<'_>> =
                paths.iter().map(|p| (0, p.as_path(), false)).collect();
            std::thread::scope(|scope| {
                let mut ahead = Lookahead::start(scope, &files, 2);
                let first = ahead.next_chunk().unwrap();
                assert!(matches!(first[0].parsed, Parsed::Rejected(_)));
                // Give the workers time to reach the end of the window.
                std::thread::sleep(Duration::from_millis(300));
                let handed = ahead.handed;
                let parsed = handed
                    + ahead.waiting.len()
                    + ahead
                        .parsed
                        .as_ref()
                        .unwrap()
                        .try_iter()
                        .map(|(_, v)| v.len())
                        .sum::<usize>();
                assert!(
                    parsed <= handed + AHEAD_FILES + 2 * CLAIM_FILES,
                    "{parsed} files parsed with {handed} handed"
                );
                assert!(parsed < n, "the workers did not wait for the writer");
                drop(ahead);
            });
        });
    }
}
