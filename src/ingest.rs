//! Report files → store: parse in parallel, write from one thread in large transactions.
//!
//! A file is stored whole or not at all: it is parsed completely before any of it is
//! written, and the batch it belongs to commits atomically. A file already stored for the
//! same run (same blake3 content hash) is skipped, so re-ingesting is a no-op.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::junit::{self, FileError, Merger, Report};
use crate::model::RunMeta;
use crate::store::{prepare_with_ids, Prepared, Store};

mod lookahead;

/// Files at or above this size are streamed into the store in chunks instead of being
/// parsed in memory first, so that memory stays bounded for multi-gigabyte reports.
pub const STREAM_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Cases handed to the store at a time when streaming a huge report.
const STREAM_CHUNK: usize = 20_000;
/// Results per transaction during a backfill: large enough to amortise commits, small
/// enough that a crash loses little work.
const RESULTS_PER_COMMIT: u64 = 250_000;
/// Test cases handed to the writer at a time, at most (about 20–40 MB once parsed);
/// parsing runs up to two such chunks ahead (see [`lookahead`]).
const CHUNK_CASES: usize = 100_000;
/// The most files handed to the writer at a time.
const MAX_CHUNK_FILES: usize = 512;

/// One run's reports to ingest.
#[derive(Debug, Clone)]
pub struct RunInput {
    pub meta: RunMeta,
    /// False when no flag, environment or manifest gave a start time: the reports' own
    /// timestamp is used, else the time of ingest.
    pub started_at_known: bool,
    /// Report files named on their own: each must be a JUnit report.
    pub paths: Vec<PathBuf>,
    /// Report files found by searching folders: another tool's XML among them is skipped.
    pub found: Vec<PathBuf>,
}

impl RunInput {
    /// The run's report files, named and found, with their count known up front.
    pub fn files(&self) -> usize {
        self.paths.len() + self.found.len()
    }
}

/// What an ingest did. Counts are of what was newly stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Report files read.
    pub files: u64,
    /// Runs the files belonged to.
    pub runs: u64,
    /// Test results stored: one per test per run, reruns merged.
    pub tests: u64,
    /// Executed attempts, reruns included.
    pub attempts: u64,
    /// Tests that passed in their run, flaky ones included.
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Tests that passed only after a failed attempt within their run.
    pub flaky: u64,
    /// Files that were rejected (see the errors printed).
    pub rejected: u64,
    /// Files already stored for their run, skipped.
    pub unchanged: u64,
    /// Files found in folders that are another tool's XML (`pom.xml`,
    /// `testng-results.xml`), skipped.
    pub not_junit: u64,
    /// TestNG's copies of results that another report of the run holds (see
    /// [`TestNgCopies`]), skipped.
    pub duplicates: u64,
    /// Distinct test identities among the stored results.
    pub distinct_tests: u64,
}

impl Summary {
    pub fn line(&self) -> String {
        let mut skipped = String::new();
        if self.not_junit > 0 {
            skipped += &format!("; {} not JUnit (skipped)", self.not_junit);
        }
        if self.duplicates > 0 {
            skipped += &format!("; {} TestNG copies (skipped)", self.duplicates);
        }
        format!(
            "{} files, {} runs, {} tests ({} attempts): {} passed ({} flaky), {} failed, {} skipped; {} rejected, {} already stored{skipped}",
            self.files,
            self.runs,
            self.tests,
            self.attempts,
            self.passed,
            self.flaky,
            self.failed,
            self.skipped,
            self.rejected,
            self.unchanged
        )
    }
}

/// A rejected report: printed as `path:line:column: reason`, or `path: reason` when no
/// place in the file is known (line 0: it could not be read, or is no report at all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Rejection {
    pub path: String,
    pub line: u64,
    pub column: u64,
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.path, self.reason);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.reason
        )
    }
}

/// The report files under a path: the file itself, or every `*.xml`, `*.junit-xml` and
/// `*.xml.gz` below a folder, sorted so that ingest order is deterministic.
pub fn report_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    list_reports(path).map(|l| l.files)
}

/// The report files a path stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub files: Vec<PathBuf>,
    /// The path is a folder that was searched. A file found there whose root element is
    /// not a JUnit one is another tool's XML (`pom.xml`, `testng-results.xml`) and is
    /// skipped; a file named on its own must be a report.
    pub searched: bool,
}

/// [`report_files`], saying whether the path was a folder.
pub fn list_reports(path: &Path) -> std::io::Result<Listed> {
    // Listing first and asking what the path is only when that fails saves a `statx` per
    // folder of a manifest (thousands of job folders).
    let top = match open_folder(path) {
        Ok(fd) => fd,
        // Not `NotADirectory` alone: `report.xml/x` says so too, and is no file.
        Err(e) => {
            return match std::fs::metadata(path) {
                Ok(meta) if !meta.is_dir() => Ok(Listed {
                    files: vec![path.to_path_buf()],
                    searched: false,
                }),
                _ => Err(e),
            }
        }
    };
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    let mut top = Some(top);
    // Directory entries are read straight from `getdents64` into this buffer: `std`'s
    // `read_dir` goes through libc's `opendir`, which adds an `fstat` and a 32 KiB
    // allocation per folder, and a path allocation per entry.
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 8192];
    while let Some(dir) = stack.pop() {
        let fd = match top.take() {
            Some(fd) => fd,
            None => open_folder(&dir)?,
        };
        let mut entries = rustix::fs::RawDir::new(&fd, &mut buf);
        while let Some(entry) = entries.next() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = std::ffi::OsStr::from_bytes(name);
            let kind = match entry.file_type() {
                // Some file systems do not say (`DT_UNKNOWN`): ask, as `std` does, without
                // following a link.
                rustix::fs::FileType::Unknown => rustix::fs::FileType::from_raw_mode(
                    rustix::fs::statat(&fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?.st_mode,
                ),
                kind => kind,
            };
            if kind == rustix::fs::FileType::Directory {
                stack.push(dir.join(name));
            } else if is_report_name(&name.to_string_lossy()) {
                out.push(dir.join(name));
            }
        }
    }
    out.sort();
    Ok(Listed {
        files: out,
        searched: true,
    })
}

/// Open a folder for listing; fails (`ENOTDIR`) on anything else.
fn open_folder(path: &Path) -> std::io::Result<rustix::fd::OwnedFd> {
    use rustix::fs::OFlags;
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// TestNG writes each result up to three times in JUnit form: Surefire's own report
/// (`TEST-<class>.xml`, no TestNG comment) and TestNG's two reporters, one folder below
/// TestNG's output folder (`junitreports/`, `<suite name>/`), which under Surefire is
/// Surefire's report folder. A run keeps one copy: Surefire's where it wrote one in that
/// output folder, else JUnitXMLReporter's (in the order run), else JUnitReportReporter's.
/// The reporters are told apart by the comment they start with, not by path: the suite
/// folder is named by the user's `testng.xml`.
#[derive(Debug)]
pub struct TestNgCopies<T> {
    /// Folders holding a report that TestNG did not write.
    plain_dirs: HashSet<PathBuf>,
    /// TestNG's reports seen so far, in order: output folder, reporter, the report.
    held: Vec<(Option<PathBuf>, junit::TestNgReporter, T)>,
}

impl<T> Default for TestNgCopies<T> {
    fn default() -> Self {
        TestNgCopies {
            plain_dirs: HashSet::new(),
            held: Vec::new(),
        }
    }
}

impl<T> TestNgCopies<T> {
    /// A report TestNG did not write (Surefire's, or any other tool's).
    pub fn plain(&mut self, path: &Path) {
        if let Some(dir) = path.parent() {
            // Reports come sorted, so most share the last one's folder: no allocation.
            if !self.plain_dirs.contains(dir) {
                self.plain_dirs.insert(dir.to_path_buf());
            }
        }
    }

    /// A report written by one of TestNG's reporters, held until [`Self::resolve`].
    pub fn hold(&mut self, path: &Path, reporter: junit::TestNgReporter, report: T) {
        let out_dir = path.parent().and_then(Path::parent).map(Path::to_path_buf);
        self.held.push((out_dir, reporter, report));
    }

    /// Once all the run's reports have been seen: the held reports to keep and those
    /// to skip, each in the order held. The copies are then forgotten for the next run.
    pub fn resolve(&mut self) -> (Vec<T>, Vec<T>) {
        let plain_dirs = std::mem::take(&mut self.plain_dirs);
        let covered = |dir: &Option<PathBuf>| dir.as_ref().is_some_and(|d| plain_dirs.contains(d));
        let mut best: std::collections::HashMap<Option<PathBuf>, junit::TestNgReporter> =
            std::collections::HashMap::new();
        for (dir, reporter, _) in &self.held {
            if !covered(dir) {
                let b = best.entry(dir.clone()).or_insert(*reporter);
                *b = (*b).min(*reporter);
            }
        }
        let (mut keep, mut skip) = (Vec::new(), Vec::new());
        for (dir, reporter, report) in self.held.drain(..) {
            if !covered(&dir) && best.get(&dir) == Some(&reporter) {
                keep.push(report);
            } else {
                skip.push(report);
            }
        }
        (keep, skip)
    }
}

/// Whether a file name is one a folder's reports are picked by (`*.xml`, `*.junit-xml`,
/// `*.xml.gz`, any case). Uploads use the same rule, so that uploading and ingesting agree.
pub fn is_report_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".xml") || name.ends_with(".junit-xml") || name.ends_with(".xml.gz")
}

enum Parsed {
    Whole {
        hash: String,
        // Boxed so that a rejection or a skipped file does not take a whole report's room.
        report: Box<Report>,
        prepared: Prepared,
    },
    /// Too big to hold: hashed now, parsed by the writer as a stream. Also a TestNG copy
    /// held until its run's last file: its parse is dropped, and redone if it is kept.
    Huge {
        hash: String,
        testng: Option<junit::TestNgReporter>,
    },
    /// Found in a folder, and another tool's XML: the reason, for the log.
    NotJunit(Rejection),
    Rejected(Rejection),
}

struct ParsedFile {
    run: usize,
    path: PathBuf,
    parsed: Parsed,
}

impl Parsed {
    /// Test cases held in memory (a streamed report holds none until it is written).
    fn cases(&self) -> usize {
        match self {
            Parsed::Whole { report, .. } => report.cases.len(),
            Parsed::Huge { .. } | Parsed::NotJunit(_) | Parsed::Rejected(_) => 0,
        }
    }
}

fn rejection(path: &Path, err: FileError) -> Rejection {
    let (line, column, reason) = match err {
        FileError::Io(e) => (0, 0, format!("cannot read: {e}")),
        FileError::Parse(e) => (e.line, e.column, e.reason),
    };
    Rejection {
        path: path.display().to_string(),
        line,
        column,
        reason,
    }
}

fn reject(path: &Path, err: FileError) -> Parsed {
    Parsed::Rejected(rejection(path, err))
}

/// Read, hash and parse one report. `found`: it was found by searching a folder, where
/// another tool's XML is skipped instead of rejected.
fn parse_one(path: &Path, found: bool) -> Parsed {
    use std::os::unix::fs::OpenOptionsExt;
    // One path lookup per file: open, then fstat the open file. Non-blocking, so that
    // opening a FIFO returns at once and is refused below instead of waiting for a writer.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) => return reject(path, FileError::Io(e.to_string())),
    };
    let size = match file.metadata() {
        // A FIFO would block ingest forever and a device (a link to /dev/zero) never ends:
        // only regular files are reports.
        Ok(m) if !m.is_file() => {
            return reject(
                path,
                FileError::Io("not a regular file (a FIFO, device or socket); refused".into()),
            )
        }
        Ok(m) => m.len(),
        Err(e) => return reject(path, FileError::Io(e.to_string())),
    };
    if size >= STREAM_THRESHOLD {
        // Its start says whether it is a report, and whose, before it is streamed.
        let mut start = vec![0u8; 64 * 1024];
        let n = match read_start(&mut file, &mut start) {
            Ok(n) => n,
            Err(e) => return reject(path, FileError::Io(e.to_string())),
        };
        let start = &start[..n];
        let head = if junit::is_plain(start) {
            junit::head(start)
        } else {
            junit::Head::default()
        };
        if let (true, Some(root)) = (found, &head.foreign_root) {
            return Parsed::NotJunit(Rejection {
                path: path.display().to_string(),
                line: 0,
                column: 0,
                reason: format!("not a JUnit report: root element is <{root}>"),
            });
        }
        return match hash_file(start, &mut file) {
            Ok(hash) => Parsed::Huge {
                hash: junit::report_key(hash, junit::local_path_environment(path).as_deref()),
                testng: head.testng,
            },
            Err(e) => reject(path, FileError::Io(e.to_string())),
        };
    }
    READ_BUFFER.with_borrow_mut(|buf| {
        let parsed = match read_whole(&mut file, size, buf) {
            Ok(n) => {
                drop(file);
                parse_read(path, found, &buf[..n])
            }
            Err(e) => reject(path, FileError::Io(e.to_string())),
        };
        if buf.capacity() > KEPT_READ_BUFFER {
            *buf = Vec::new();
        }
        parsed
    })
}

/// Hash and parse a report read whole.
fn parse_read(path: &Path, found: bool, bytes: &[u8]) -> Parsed {
    // Two variants' byte-identical reports are two reports: the key holds the environment.
    let environment = junit::local_path_environment(path);
    let hash = junit::report_key(
        blake3::hash(bytes).to_hex().to_string(),
        environment.as_deref(),
    );
    let options = junit::ParseOptions {
        environment: environment.as_deref(),
        ..junit::ParseOptions::default()
    };
    match junit::parse_bytes_with(bytes, options) {
        Ok(report) => {
            let prepared = prepare_with_ids(&report.cases, &report.ids);
            Parsed::Whole {
                hash,
                report: Box::new(report),
                prepared,
            }
        }
        Err(e) => {
            let r = rejection(path, FileError::Parse(junit::located_in(bytes, &e)));
            if found && e.is_foreign_root() {
                Parsed::NotJunit(r)
            } else {
                Parsed::Rejected(r)
            }
        }
    }
}

/// Read a regular file of `size` bytes (as `fstat` gave it) to its end, into `buf`;
/// returns how many bytes it holds, at its start. With many small files the kernel's
/// per-call cost outweighs the copying: `read_to_end` asks for the size again (`statx`,
/// `lseek`) and ends with an empty `read`, three calls of the seven per file. A short read
/// at the announced size is the end of a regular file; a file that grew since is read on to
/// its new end.
///
/// `buf` keeps its length (the largest file it held) between files: only bytes past it
/// are zeroed before a read, and the rest of it is the previous file's, never returned.
fn read_whole(file: &mut std::fs::File, size: u64, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let want = size as usize + 1;
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut filled = 0;
    loop {
        match file.read(&mut buf[filled..want]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled == want {
                    buf.truncate(filled);
                    file.read_to_end(buf)?;
                    return Ok(buf.len());
                }
                // Only a first read that returns the whole announced size is trusted as the
                // end; after short reads (network file systems) read on to an empty one.
                if filled == n && filled as u64 == size {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The largest read buffer a parse thread keeps between files.
const KEPT_READ_BUFFER: usize = 4 << 20;

thread_local! {
    /// Each parse thread's read buffer: a report is read into it, hashed and parsed, and
    /// nothing parsed borrows from it, so one buffer serves every file instead of a fresh
    /// zeroed allocation per file.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Fill `buf` from the start of a file as far as it goes; the bytes read.
fn read_start(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// blake3 of a file whose `start` was read already, reading the rest from `file`.
fn hash_file(start: &[u8], file: &mut std::fs::File) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(start);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Progress callback: files done so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Ingest runs into the store. Rejected files are returned, not fatal; database and I/O
/// errors are.
pub fn ingest(
    store: &mut Store,
    runs: &[RunInput],
    progress: Option<Progress<'_>>,
) -> Result<(Summary, Vec<Rejection>)> {
    let files: Vec<lookahead::FileToRead<'_>> = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let named = r.paths.iter().map(move |p| (i, p.as_path(), false));
            named.chain(r.found.iter().map(move |p| (i, p.as_path(), true)))
        })
        .collect();
    let mut summary = Summary::default();
    let mut rejections = Vec::new();
    let mut run_keys: Vec<Option<i64>> = vec![None; runs.len()];
    let mut distinct: HashSet<i64, foldhash::fast::RandomState> = HashSet::default();

    std::thread::scope(|scope| -> Result<()> {
        // Parsing runs ahead of writing, on all cores. One report (a CI post-step) is
        // parsed on this thread, without starting threads that would only wait for it.
        let workers = if files.len() <= 1 {
            0
        } else {
            rayon::current_num_threads().max(1)
        };
        let mut ahead = lookahead::Lookahead::start(
            scope,
            &files,
            &parse_one,
            workers,
            lookahead::Limits::DEFAULT,
        );

        // Freeing a chunk's parsed reports is a good share of the writer's time with many
        // small files, and with one big report (a CI post-step) it overlaps the commit:
        // hand them to a thread of their own.
        let (spent_tx, spent_rx) = sync_channel::<Vec<(Report, Prepared)>>(4);
        scope.spawn(move || spent_rx.into_iter().for_each(drop));

        let mut batch = store.batch()?;
        // A job attempt that left no report (an infrastructure failure, a crash before the
        // tests ran) is still an attempt: its retry counts towards the job's retries.
        for (i, input) in runs.iter().enumerate() {
            if input.files() == 0 {
                let (k, _) = batch.run(&input.meta)?;
                run_keys[i] = Some(k);
                summary.runs += 1;
            }
        }
        let mut in_batch = 0u64;
        let mut done = 0u64;
        // TestNG's reports wait for the last file of their run (runs' files come in
        // order), then only the copies no other report holds are stored. A held copy keeps
        // only its hash: one that is kept is parsed again, as a stream.
        let mut copies = TestNgCopies::<ParsedFile>::default();
        let mut held_run = None;
        // Per run, files that are other tools' XML: a run with nothing else has no report.
        let mut not_junit = vec![0usize; runs.len()];
        let release = |copies: &mut TestNgCopies<ParsedFile>,
                       ready: &mut Vec<ParsedFile>,
                       summary: &mut Summary,
                       done: &mut u64| {
            let (keep, skip) = copies.resolve();
            ready.extend(keep);
            for file in skip {
                tracing::info!(path = %file.path.display(), "skipped: TestNG's copy of results another report of the run holds");
                summary.files += 1;
                summary.duplicates += 1;
                *done += 1;
            }
        };
        let mut last = false;
        while !last {
            let chunk = ahead.next_chunk()?;
            last = chunk.is_none();
            let chunk = chunk.unwrap_or_default();
            let mut ready = Vec::with_capacity(chunk.len());
            for mut file in chunk {
                if held_run.is_some_and(|r| r != file.run) {
                    release(&mut copies, &mut ready, &mut summary, &mut done);
                }
                held_run = Some(file.run);
                let testng = match &mut file.parsed {
                    Parsed::Whole { report, hash, .. } => match report.info.testng {
                        // Held by its hash alone, so that memory stays bounded.
                        Some(reporter) => {
                            let hash = std::mem::take(hash);
                            file.parsed = Parsed::Huge {
                                hash,
                                testng: Some(reporter),
                            };
                            Some(reporter)
                        }
                        None => None,
                    },
                    Parsed::Huge { testng, .. } => *testng,
                    Parsed::NotJunit(_) => {
                        not_junit[file.run] += 1;
                        ready.push(file);
                        continue;
                    }
                    Parsed::Rejected(_) => {
                        ready.push(file);
                        continue;
                    }
                };
                match testng {
                    Some(reporter) => copies.hold(&file.path.clone(), reporter, file),
                    None => {
                        copies.plain(&file.path);
                        ready.push(file);
                    }
                }
            }
            if last {
                release(&mut copies, &mut ready, &mut summary, &mut done);
            }
            let mut spent = Vec::with_capacity(ready.len());
            for file in ready {
                done += 1;
                summary.files += 1;
                let input = &runs[file.run];
                let (hash, report) = match file.parsed {
                    Parsed::NotJunit(r) => {
                        tracing::info!(%r, "skipped: not a JUnit report");
                        summary.not_junit += 1;
                        continue;
                    }
                    Parsed::Rejected(r) => {
                        // The caller prints every rejection as `path:line:column: reason`.
                        tracing::info!(%r, "rejected report");
                        summary.rejected += 1;
                        rejections.push(r);
                        continue;
                    }
                    Parsed::Whole {
                        hash,
                        report,
                        prepared,
                    } => (hash, Some((*report, prepared))),
                    Parsed::Huge { hash, .. } => (hash, None),
                };
                // A streamed report is stored inside a savepoint taken before its run
                // may be created, so that rejecting it halfway leaves no empty run.
                let streamed = report.is_none();
                if streamed {
                    batch.savepoint()?;
                }
                let new_run = run_keys[file.run].is_none();
                let run_key = match run_keys[file.run] {
                    Some(k) => k,
                    None => {
                        let mut meta = input.meta.clone();
                        if !input.started_at_known {
                            meta.started_at = report
                                .as_ref()
                                .and_then(|(r, _)| report_timestamp(&r.info))
                                .unwrap_or(meta.started_at);
                        }
                        let (k, _) = batch.run(&meta)?;
                        run_keys[file.run] = Some(k);
                        summary.runs += 1;
                        k
                    }
                };
                if batch.has_file(run_key, &hash)? {
                    if streamed {
                        batch.release_savepoint()?;
                    }
                    summary.unchanged += 1;
                    continue;
                }
                let shown = file.path.display().to_string();
                let tally = match report {
                    Some((report, prepared)) => {
                        let t = batch.add_file_prepared(
                            run_key,
                            &hash,
                            &shown,
                            &report.cases,
                            &prepared,
                            report.info.testcases,
                            report.info.time_s,
                        )?;
                        spent.push((report, prepared));
                        t
                    }
                    None => {
                        // Parse straight into this batch; on a parse error the batch is
                        // rolled back to the savepoint, before this file and its run.
                        match stream_huge(&mut batch, run_key, &hash, &file.path)? {
                            Ok(t) => t,
                            Err(r) => {
                                if new_run {
                                    run_keys[file.run] = None;
                                    summary.runs -= 1;
                                }
                                summary.rejected += 1;
                                rejections.push(r);
                                continue;
                            }
                        }
                    }
                };
                summary.tests += tally.tests;
                summary.attempts += tally.attempts;
                summary.passed += tally.passed + tally.flaky;
                summary.flaky += tally.flaky;
                summary.failed += tally.failed;
                summary.skipped += tally.skipped;
                in_batch += tally.tests;
                if in_batch >= RESULTS_PER_COMMIT {
                    distinct.extend(batch.tests_seen());
                    batch.commit()?;
                    batch = store.batch()?;
                    in_batch = 0;
                }
                if let Some(p) = progress {
                    p(done);
                }
            }
            let _ = spent_tx.send(spent);
        }
        drop(spent_tx);
        // A run whose folder held only other tools' XML has no report: like a missing
        // folder, an error, not a clean run.
        for (i, input) in runs.iter().enumerate() {
            let n = not_junit[i];
            if n > 0 && n == input.files() && run_keys[i].is_none() {
                let r = Rejection {
                    path: common_folder(input.paths.iter().chain(&input.found)),
                    line: 0,
                    column: 0,
                    reason: format!(
                        "no JUnit reports: the {n} XML file(s) found are other tools' (see -v); nothing stored for this run (did the tests run?)"
                    ),
                };
                tracing::info!(%r, "rejected run");
                summary.rejected += 1;
                rejections.push(r);
            }
        }
        distinct.extend(batch.tests_seen());
        batch.commit()?;
        Ok(())
    })?;
    summary.distinct_tests = distinct.len() as u64;
    Ok((summary, rejections))
}

/// The deepest folder that holds all the paths, for messages.
fn common_folder<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> String {
    let mut common: Option<PathBuf> = None;
    for p in paths {
        let dir = p.parent().unwrap_or(Path::new(""));
        common = Some(match common {
            None => dir.to_path_buf(),
            Some(c) => c
                .components()
                .zip(dir.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    common.map(|c| c.display().to_string()).unwrap_or_default()
}

/// Stream a huge report into the batch in chunks of cases, inside the savepoint the
/// caller took, so that a parse error halfway leaves nothing of the file: the savepoint is
/// released on success and rolled back to on a parse error.
fn stream_huge(
    batch: &mut crate::store::Batch<'_>,
    run_key: i64,
    hash: &str,
    path: &Path,
) -> Result<std::result::Result<crate::store::FileTally, Rejection>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, "cannot open report", e))?;
    let mut tally = crate::store::FileTally::default();
    // One merger for the whole file: a repeat in a later chunk is read as it would be in
    // a small report (a rerun, or another test of the same name), then merged in the
    // database by test identity.
    let mut merger = Merger::default();
    let mut store_error: Option<Error> = None;
    let shown = path.display().to_string();
    let environment = junit::local_path_environment(path);
    let options = junit::ParseOptions {
        environment: environment.as_deref(),
        ..junit::ParseOptions::default()
    };
    let result = junit::parse_any_with(file, options, |case, dialect| {
        merger.push(case, dialect);
        if merger.pending() >= STREAM_CHUNK {
            match batch.add_cases(run_key, &merger.drain()) {
                Ok(t) => add_tally(&mut tally, t),
                Err(e) => {
                    store_error = Some(e);
                    return Err(junit::ParseError {
                        offset: 0,
                        reason: "store error".into(),
                    });
                }
            }
        }
        Ok(())
    });
    if let Some(e) = store_error {
        return Err(e);
    }
    match result {
        Ok(info) => {
            let cases = merger.drain_all();
            let t = batch.add_file(run_key, hash, &shown, &cases, info.testcases, info.time_s)?;
            add_tally(&mut tally, t);
            batch.release_savepoint()?;
            Ok(Ok(tally))
        }
        Err(e) => {
            batch.rollback_to_savepoint()?;
            let located = junit::located(path, &e);
            Ok(Err(Rejection {
                path: shown,
                line: located.line,
                column: located.column,
                reason: located.reason,
            }))
        }
    }
}

fn add_tally(into: &mut crate::store::FileTally, t: crate::store::FileTally) {
    into.tests += t.tests;
    into.attempts += t.attempts;
    into.passed += t.passed;
    into.flaky += t.flaky;
    into.failed += t.failed;
    into.skipped += t.skipped;
}

/// A report's earliest suite `timestamp` as Unix seconds (read by the parser; no zone means
/// UTC); `None` when it is more than a day in the future (a runner's broken clock), so the
/// time of ingest is used.
pub fn report_timestamp(info: &crate::junit::ReportInfo) -> Option<i64> {
    info.timestamp_s.filter(|&t| future_start(t).is_none())
}

/// Why a run's start is refused: more than [`crate::model::MAX_FUTURE_S`] after the wall
/// clock. `None` when it is acceptable.
pub fn future_start(started_at: i64) -> Option<String> {
    let now = chrono::Utc::now().timestamp();
    (started_at > now + crate::model::MAX_FUTURE_S).then(|| {
        format!(
            "{} is more than a day in the future (the clock here says {}); check the runner's clock or the value given",
            crate::score::rfc3339(started_at),
            crate::score::rfc3339(now)
        )
    })
}

/// A default run id when neither a flag nor the CI environment gives one: unique per
/// call (time to the nanosecond, process id and a random part), so that separate ingests
/// never merge into one run. Re-ingesting the same reports without a run id therefore
/// records a new run: pass `--run-id` for idempotent re-ingests.
pub fn default_run_id() -> String {
    let now = chrono::Utc::now();
    format!(
        "local-{}-{:x}-{:08x}",
        now.format("%Y%m%dT%H%M%S%.9fZ"),
        std::process::id(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size `fstat` gave may be stale: a file that grew since is read to its new end,
    /// one that shrank to what is left.
    #[test]
    fn a_file_is_read_whole_whatever_size_was_announced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.xml");
        let text: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &text).unwrap();
        // One buffer throughout, as a parse thread keeps it: what a larger file left in it
        // is never read back as a smaller file's.
        let mut buf = vec![7u8; 300_000];
        for announced in [0, 1, 99_999, 100_000, 100_001, 250_000] {
            let mut f = std::fs::File::open(&path).unwrap();
            let n = read_whole(&mut f, announced, &mut buf).unwrap();
            assert_eq!(&buf[..n], &text[..], "{announced}");
        }
        std::fs::write(&path, b"abc").unwrap();
        for announced in [0, 3, 10] {
            let mut f = std::fs::File::open(&path).unwrap();
            let n = read_whole(&mut f, announced, &mut buf).unwrap();
            assert_eq!(&buf[..n], b"abc", "{announced}");
        }
        std::fs::write(&path, b"").unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        assert_eq!(read_whole(&mut f, 0, &mut buf).unwrap(), 0);
        let mut fresh = Vec::new();
        let mut f = std::fs::File::open(&path).unwrap();
        assert_eq!(read_whole(&mut f, 0, &mut fresh).unwrap(), 0);
    }

    /// Per TestNG output folder: Surefire's report wins, else JUnitXMLReporter's files, else
    /// JUnitReportReporter's; another output folder (another module) is judged on its own.
    #[test]
    fn one_copy_of_testng_results_is_kept_per_output_folder() {
        use junit::TestNgReporter::{JUnitReport, JUnitXml};
        let mut c = TestNgCopies::default();
        c.plain(Path::new("a/surefire-reports/TEST-x.xml"));
        c.hold(
            Path::new("a/surefire-reports/junitreports/TEST-x.xml"),
            JUnitReport,
            0,
        );
        c.hold(
            Path::new("a/surefire-reports/Surefire suite/t.xml"),
            JUnitXml,
            1,
        );
        c.hold(
            Path::new("b/test-output/junitreports/TEST-y.xml"),
            JUnitReport,
            2,
        );
        c.hold(Path::new("b/test-output/Suite/t.xml"), JUnitXml, 3);
        c.hold(Path::new("c/out/junitreports/TEST-z.xml"), JUnitReport, 4);
        assert_eq!(c.resolve(), (vec![3, 4], vec![0, 1, 2]));
        // Forgotten for the next run: the same files alone are kept.
        c.hold(
            Path::new("a/surefire-reports/junitreports/TEST-x.xml"),
            JUnitReport,
            5,
        );
        assert_eq!(c.resolve(), (vec![5], vec![]));
    }

    #[test]
    fn a_folder_of_many_reports_is_listed_whole_and_links_to_folders_are_not_followed() {
        // More entries than one directory read returns (an 8 KiB buffer holds ~130 of
        // these names), and a link back to the folder that would loop if followed.
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        for i in 0..600 {
            let p = dir
                .path()
                .join(format!("TEST-com.example.billing.Service{i:04}IT.xml"));
            std::fs::write(&p, b"<testsuite/>").unwrap();
            expected.push(p);
        }
        std::os::unix::fs::symlink(dir.path(), dir.path().join("again")).unwrap();
        assert_eq!(report_files(dir.path()).unwrap(), expected);
    }

    /// A file is taken as given (whatever its name), a folder is searched for reports in
    /// sorted order, and a path that does not exist is an error naming the cause.
    #[test]
    fn report_files_takes_a_file_as_is_and_lists_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("b").join("c");
        std::fs::create_dir_all(&nested).unwrap();
        for p in [
            dir.path().join("z.xml"),
            dir.path().join("notes.txt"),
            dir.path().join("b").join("a.junit-xml"),
            nested.join("TEST-x.XML"),
            nested.join("r.xml.gz"),
        ] {
            std::fs::write(p, b"<testsuite/>").unwrap();
        }
        let found = report_files(dir.path()).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        assert_eq!(
            names,
            ["b/a.junit-xml", "b/c/TEST-x.XML", "b/c/r.xml.gz", "z.xml"]
        );
        let txt = dir.path().join("notes.txt");
        assert_eq!(report_files(&txt).unwrap(), vec![txt]);
        let missing = report_files(&dir.path().join("nope")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        assert!(report_files(&dir.path().join("z.xml").join("x")).is_err());
    }
}
