//! Parse report files ahead of the writer, on worker threads, and hand them over in order.
//!
//! Workers take the next files as soon as they finish: there is no barrier at the end of
//! a chunk, where one worker would wait (spinning, then asleep) for the slowest file of
//! the chunk while the writer waits for the chunk. The writer gets files back in their
//! given order (a run's files stay together, and the store's keys follow the input), and
//! how far the workers may run ahead is bounded in files and in parsed test cases, so
//! that memory stays bounded whatever the writer's pace.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::Scope;

use super::{Parsed, ParsedFile, CHUNK_CASES, MAX_CHUNK_FILES};
use crate::error::{Error, Result};

/// A file to read: its run's index in the input, its path, and whether it was found by
/// searching a folder (another tool's XML is then skipped, not rejected).
pub(super) type FileToRead<'a> = (usize, &'a Path, bool);

/// How a file is parsed (`parse_one`; tests give their own).
pub(super) type ParseFn<'a> = &'a (dyn Fn(&Path, bool) -> Parsed + Sync);

/// How far parsing may run ahead of the writer, and in what portions.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Parsed files not yet handed to the writer, at most.
    pub ahead_files: usize,
    /// Parsed test cases not yet handed to the writer, at most (one file more may be
    /// parsed per worker, and the file the writer needs next always may).
    pub ahead_cases: usize,
    /// Files a worker claims at a time, at most: fewer when there are few files, so that
    /// every worker gets some.
    pub claim_files: usize,
    /// Parsed test cases a worker holds before it sends them, at most (more when one file
    /// has more).
    pub send_cases: usize,
    /// Files and test cases handed to the writer at a time, at most.
    pub chunk_files: usize,
    pub chunk_cases: usize,
}

impl Limits {
    /// About 40–80 MB of parsed reports ahead of the writer.
    pub const DEFAULT: Limits = Limits {
        ahead_files: 2 * MAX_CHUNK_FILES,
        ahead_cases: 2 * CHUNK_CASES,
        claim_files: 16,
        send_cases: CHUNK_CASES / 8,
        chunk_files: MAX_CHUNK_FILES,
        chunk_cases: CHUNK_CASES,
    };
}

/// What the writer has taken, shared with the workers so they know how far they may go.
struct Window {
    limits: Limits,
    state: Mutex<WindowState>,
    moved: Condvar,
}

#[derive(Default)]
struct WindowState {
    /// Files handed to the writer: the index of the next one it needs.
    handed: usize,
    /// Test cases parsed and not yet handed.
    cases_ahead: usize,
    /// The writer is gone (finished, or stopped on an error), or a worker panicked:
    /// workers stop.
    stopped: bool,
}

impl WindowState {
    /// The file the writer needs next may always be parsed, so that no wait deadlocks.
    fn has_room(&self, i: usize, limits: &Limits) -> bool {
        i == self.handed
            || (i < self.handed + limits.ahead_files && self.cases_ahead < limits.ahead_cases)
    }
}

impl Window {
    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether file `i` may be parsed now; false too when the workers are to stop.
    fn has_room(&self, i: usize) -> bool {
        let s = self.lock();
        !s.stopped && s.has_room(i, &self.limits)
    }

    /// Wait until file `i` may be parsed; false when the workers are to stop.
    fn wait_for_room(&self, i: usize) -> bool {
        let mut s = self.lock();
        while !s.stopped && !s.has_room(i, &self.limits) {
            s = self.moved.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        !s.stopped
    }

    fn parsed(&self, cases: usize) {
        self.lock().cases_ahead += cases;
    }

    fn handed(&self, files: usize, cases: usize) {
        let mut s = self.lock();
        s.handed += files;
        s.cases_ahead -= cases;
        drop(s);
        self.moved.notify_all();
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.moved.notify_all();
    }
}

/// Stops the other workers when a worker panics: they would otherwise wait for room the
/// writer can never make, as it waits for the files the panicked worker claimed.
struct StopOnPanic<'w>(&'w Window);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// The writer's end: parsed files in their given order, a chunk at a time.
pub(super) struct Lookahead<'a> {
    files: &'a [FileToRead<'a>],
    parse: ParseFn<'a>,
    /// `None` when there are no workers: files are parsed as they are asked for.
    parsed: Option<Receiver<(usize, Vec<ParsedFile>)>>,
    window: Arc<Window>,
    /// Files parsed and not handed yet, from index `handed` on (`None`: not here yet).
    waiting: VecDeque<Option<ParsedFile>>,
    handed: usize,
}

impl<'a> Lookahead<'a> {
    /// Start `workers` threads in `scope` parsing `files`. With no workers, the writer's
    /// thread parses each file: the first one here, before the writer starts its
    /// transaction (a CI post-step's one report is not parsed under the write lock), the
    /// others when asked for.
    pub(super) fn start<'scope>(
        scope: &'scope Scope<'scope, 'a>,
        files: &'a [FileToRead<'a>],
        parse: ParseFn<'a>,
        workers: usize,
        limits: Limits,
    ) -> Lookahead<'a> {
        let window = Arc::new(Window {
            limits,
            state: Mutex::default(),
            moved: Condvar::new(),
        });
        let mut waiting = VecDeque::new();
        let parsed = if workers == 0 {
            if let Some(file) = files.first() {
                waiting.push_back(Some(parse_file(parse, file)));
            }
            None
        } else {
            let (tx, rx) = channel();
            let next = Arc::new(AtomicUsize::new(0));
            let claim = (files.len() / (workers * 8)).clamp(1, limits.claim_files.max(1));
            for _ in 0..workers {
                let worker = Worker {
                    files,
                    parse,
                    tx: tx.clone(),
                    next: next.clone(),
                    window: window.clone(),
                    claim,
                };
                scope.spawn(move || worker.run());
            }
            Some(rx)
        };
        Lookahead {
            files,
            parse,
            parsed,
            window,
            waiting,
            handed: 0,
        }
    }

    /// The next files in order: at least one, as many as are parsed already (up to a
    /// chunk's worth); `None` when all were handed. An error when a worker panicked (its
    /// panic is raised when the scope joins it).
    pub(super) fn next_chunk(&mut self) -> Result<Option<Vec<ParsedFile>>> {
        if self.handed == self.files.len() {
            return Ok(None);
        }
        match &self.parsed {
            None => {
                if self.waiting.is_empty() {
                    let file = parse_file(self.parse, &self.files[self.handed]);
                    self.waiting.push_back(Some(file));
                }
            }
            Some(rx) => {
                // Block for the next file only; then take whatever else has arrived.
                while !matches!(self.waiting.front(), Some(Some(_))) {
                    let Ok((i, files)) = rx.recv() else {
                        return Err(Error::Other(
                            "a parse worker stopped before handing over its reports (it panicked)"
                                .into(),
                        ));
                    };
                    place(&mut self.waiting, i - self.handed, files);
                }
                while let Ok((i, files)) = rx.try_recv() {
                    place(&mut self.waiting, i - self.handed, files);
                }
            }
        }
        let limits = self.window.limits;
        let mut chunk = Vec::new();
        let mut cases = 0;
        while chunk.len() < limits.chunk_files && cases < limits.chunk_cases {
            let Some(Some(_)) = self.waiting.front() else {
                break;
            };
            let file = self.waiting.pop_front().flatten().expect("checked above");
            cases += file.parsed.cases();
            chunk.push(file);
        }
        self.handed += chunk.len();
        self.window.handed(chunk.len(), cases);
        Ok(Some(chunk))
    }
}

impl Drop for Lookahead<'_> {
    /// Workers waiting for room must not outlive the writer (the scope joins them).
    fn drop(&mut self) {
        self.window.stop();
    }
}

/// A parse worker: claims a few files at a time and sends each claim's files together
/// (a message per file would wake the writer for each one).
struct Worker<'a> {
    files: &'a [FileToRead<'a>],
    parse: ParseFn<'a>,
    tx: Sender<(usize, Vec<ParsedFile>)>,
    next: Arc<AtomicUsize>,
    window: Arc<Window>,
    claim: usize,
}

impl Worker<'_> {
    fn run(self) {
        let _stop = StopOnPanic(&self.window);
        let send_cases = self.window.limits.send_cases;
        let mut held: Vec<ParsedFile> = Vec::with_capacity(self.claim);
        let mut held_cases = 0;
        // Sends the files held, which end just before file `end`; false when the writer
        // is gone.
        let send = |held: &mut Vec<ParsedFile>, held_cases: &mut usize, end: usize| {
            *held_cases = 0;
            held.is_empty()
                || self
                    .tx
                    .send((end - held.len(), std::mem::take(held)))
                    .is_ok()
        };
        loop {
            let first = self.next.fetch_add(self.claim, Ordering::Relaxed);
            let end = self.files.len().min(first.saturating_add(self.claim));
            if first >= end {
                return;
            }
            for (i, file) in (first..end).zip(&self.files[first..end]) {
                if !self.window.has_room(i) {
                    // The writer may be waiting for the files held here: send them first.
                    if !send(&mut held, &mut held_cases, i) || !self.window.wait_for_room(i) {
                        return;
                    }
                }
                let parsed = parse_file(self.parse, file);
                let cases = parsed.parsed.cases();
                self.window.parsed(cases);
                held_cases += cases;
                held.push(parsed);
                if held_cases >= send_cases && !send(&mut held, &mut held_cases, i + 1) {
                    return;
                }
            }
            if !send(&mut held, &mut held_cases, end) {
                return;
            }
        }
    }
}

fn parse_file(parse: ParseFn<'_>, &(run, path, found): &FileToRead<'_>) -> ParsedFile {
    ParsedFile {
        run,
        path: path.to_path_buf(),
        parsed: parse(path, found),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse_one;
    use std::path::PathBuf;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Small limits, so that a few small reports reach every one of them.
    const SMALL: Limits = Limits {
        ahead_files: 8,
        ahead_cases: 50,
        claim_files: 2,
        send_cases: 10,
        chunk_files: 5,
        chunk_cases: 30,
    };

    /// Reports of `cases[i]` test cases each, named by their index.
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

    fn to_read(paths: &[PathBuf]) -> Vec<FileToRead<'_>> {
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.as_path(), false))
            .collect()
    }

    fn cases_of(file: &ParsedFile) -> usize {
        match &file.parsed {
            Parsed::Whole { report, .. } => report.cases.len(),
            _ => panic!("{} not parsed whole", file.path.display()),
        }
    }

    /// Run `f` on another thread and fail if it has not finished in 20 s: a worker left
    /// waiting would otherwise hang the test.
    fn in_time<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(v)) => v,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("the look-ahead did not finish: a worker or the writer is stuck"),
        }
    }

    /// Every file comes back once, in its given order, within the chunk limits, however
    /// the workers race: files of very different sizes, claimed two at a time, sent
    /// early when they hold many cases, parsed ahead of a slow writer up to the window.
    #[test]
    fn files_are_handed_over_in_their_given_order() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<usize> = (0..400).map(|i| [1, 40, 0, 12, 7, 3][i % 6]).collect();
        let paths = reports(dir.path(), &cases);
        for (workers, slow_writer) in [(0, false), (1, true), (2, false), (2, true), (3, true)] {
            let (paths, cases) = (paths.clone(), cases.clone());
            in_time(move || {
                let files = to_read(&paths);
                let mut seen = Vec::new();
                std::thread::scope(|scope| {
                    let mut ahead = Lookahead::start(scope, &files, &parse_one, workers, SMALL);
                    while let Some(chunk) = ahead.next_chunk().unwrap() {
                        assert!(!chunk.is_empty() && chunk.len() <= SMALL.chunk_files);
                        let n: usize = chunk.iter().map(cases_of).sum();
                        let last = chunk.last().map_or(0, cases_of);
                        assert!(n - last < SMALL.chunk_cases, "a chunk of {n} cases");
                        seen.extend(chunk.iter().map(|f| (f.run, cases_of(f))));
                        if slow_writer {
                            std::thread::sleep(Duration::from_micros(300));
                        }
                    }
                });
                let want: Vec<(usize, usize)> = cases.iter().copied().enumerate().collect();
                assert_eq!(seen, want, "{workers} workers, slow writer {slow_writer}");
            });
        }
    }

    /// A worker may always parse the file the writer needs next, even when files parsed
    /// beyond it fill the window, and it sends what it holds before it waits: otherwise
    /// the writer waits for that file and the worker for room, forever.
    #[test]
    fn the_file_the_writer_needs_is_never_kept_waiting() {
        let dir = tempfile::tempdir().unwrap();
        // Each file but the first holds more cases than the window; the first is slow, so
        // that the other worker fills the window meanwhile.
        let cases: Vec<usize> = (0..40).map(|i| if i == 0 { 1 } else { 100 }).collect();
        let paths = reports(dir.path(), &cases);
        let slow = paths[0].clone();
        in_time(move || {
            let files = to_read(&paths);
            let parse = move |path: &Path, found: bool| {
                if path == slow {
                    std::thread::sleep(Duration::from_millis(200));
                }
                parse_one(path, found)
            };
            let mut handed = 0;
            std::thread::scope(|scope| {
                let mut ahead = Lookahead::start(scope, &files, &parse, 2, SMALL);
                while let Some(chunk) = ahead.next_chunk().unwrap() {
                    handed += chunk.len();
                }
            });
            assert_eq!(handed, 40);
        });
    }

    /// A writer that stops early (a database error) lets the workers go, even those
    /// waiting for room; and they never parse further ahead than the window.
    #[test]
    fn workers_stop_when_the_writer_stops_and_stay_within_the_window() {
        in_time(move || {
            let dir = tempfile::tempdir().unwrap();
            // Files that do not exist are rejected at once: the workers race ahead.
            let paths: Vec<PathBuf> = (0..300).map(|i| dir.path().join(format!("{i}"))).collect();
            let files = to_read(&paths);
            let parsed = AtomicUsize::new(0);
            let parse = |path: &Path, found: bool| {
                parsed.fetch_add(1, Ordering::SeqCst);
                parse_one(path, found)
            };
            std::thread::scope(|scope| {
                let mut ahead = Lookahead::start(scope, &files, &parse, 2, SMALL);
                let first = ahead.next_chunk().unwrap().unwrap();
                assert!(matches!(first[0].parsed, Parsed::Rejected(_)));
                // Give the workers time to reach the end of the window.
                std::thread::sleep(Duration::from_millis(200));
                let n = parsed.load(Ordering::SeqCst);
                assert_eq!(n, ahead.handed + SMALL.ahead_files, "files parsed");
                drop(ahead);
            });
            assert!(parsed.load(Ordering::SeqCst) < 300);
        });
    }

    /// A worker that panics stops the others, and the writer gets an error, not the end
    /// of the files: what it has not written yet is not committed as if complete.
    #[test]
    fn a_panicking_worker_stops_the_ingest() {
        let outcome = in_time(move || {
            let dir = tempfile::tempdir().unwrap();
            let paths: Vec<PathBuf> = (0..300).map(|i| dir.path().join(format!("{i}"))).collect();
            let files = to_read(&paths);
            let bad = paths[5].clone();
            let parse = move |path: &Path, found: bool| {
                assert!(path != bad, "a parser bug");
                parse_one(path, found)
            };
            let mut ended = None;
            let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                std::thread::scope(|scope| {
                    let mut ahead = Lookahead::start(scope, &files, &parse, 2, SMALL);
                    ended = Some(loop {
                        match ahead.next_chunk() {
                            Ok(Some(_)) => continue,
                            Ok(None) => break "the end",
                            Err(_) => break "an error",
                        }
                    });
                })
            }));
            (ended, joined.is_err())
        });
        assert_eq!(outcome, (Some("an error"), true));
    }
}
