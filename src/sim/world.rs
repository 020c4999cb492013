//! The simulated world: tests with their flakiness, commits with their breakages, and the
//! schedule of runs. Built from the config alone, never from outcomes, so a replay with
//! some tests fixed sees the very same world.

use std::collections::HashMap;
use std::io;
use std::ops::Range;

use super::config::{Dialect, JobConfig, SimConfig};
use super::names::{self, Template};
use super::rng::{key, lognormal, mix, Purpose, Rng};
use crate::model::TestIdentity;

pub const DAY: i64 = 86_400;

#[derive(Debug, Clone)]
pub struct TestW {
    pub job: usize,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub suite: String,
    pub src: String,
    pub func: String,
    pub parent: Option<u32>,
    pub children: Vec<u32>,
    /// Typical run time, seconds.
    pub base_time: f64,
    /// Own per-attempt failure probability when the code is fine.
    pub own_rate: f64,
    pub group: Option<u32>,
    /// Indices into the dialect's flaky templates.
    pub templates: Vec<u16>,
    /// Source line in traces.
    pub line: u32,
    /// The test exists on commits made at or after this time.
    pub intro: i64,
    pub skipped: bool,
    pub platform_broken: bool,
    pub identity: TestIdentity,
    /// Own flakiness affects commits made in `[flaky_from, flaky_until)` only.
    pub flaky_from: i64,
    pub flaky_until: i64,
}

impl TestW {
    pub fn exists_at(&self, time: i64) -> bool {
        time >= self.intro
    }

    /// Whether its own flakiness affects a commit made at `time`.
    pub fn flaky_at(&self, time: i64) -> bool {
        self.own_rate > 0.0 && time >= self.flaky_from && time < self.flaky_until
    }

    /// Whether replay can make this test fail by chance.
    pub fn draws(&self) -> bool {
        self.own_rate > 0.0 || self.group.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct JobW {
    pub cfg: JobConfig,
    pub tests: Range<u32>,
    /// Leaves that can fail by chance (flaky or group members), sorted.
    pub draws: Vec<u32>,
    /// Setup and teardown time per attempt, seconds.
    pub overhead_s: f64,
    /// Time spent running tests per attempt (wall), seconds.
    pub tests_s: f64,
}

#[derive(Debug, Clone)]
pub struct GroupW {
    pub event_prob: f64,
    pub member_prob: f64,
    pub template: Template,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub sha: String,
    pub branch: String,
    pub time: i64,
    /// Tests failing deterministically on this commit (global indices, sorted).
    pub broken: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub run_id: u64,
    pub commit: u32,
    pub started_at: i64,
    pub jobs: Vec<u16>,
}

#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    pub days: u32,
    pub max_attempts: u32,
    pub infra_failure_prob: f64,
    pub infra_no_report_prob: f64,
    pub jobs: Vec<JobW>,
    pub tests: Vec<TestW>,
    pub groups: Vec<GroupW>,
    pub commits: Vec<Commit>,
    pub runs: Vec<Run>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn check_prob(name: &str, p: f64) -> io::Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(invalid(format!("{name} must be within 0..=1, got {p}")))
    }
}

pub fn parse_start(text: &str) -> io::Result<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.timestamp())
        .map_err(|e| invalid(format!("start {text:?} is not RFC 3339: {e}")))
}

fn validate(cfg: &SimConfig) -> io::Result<()> {
    if cfg.jobs.is_empty() {
        return Err(invalid("no jobs configured".into()));
    }
    if cfg.days == 0 {
        return Err(invalid("days must be at least 1".into()));
    }
    if cfg.max_attempts == 0 || cfg.max_attempts > 20 {
        return Err(invalid("max_attempts must be within 1..=20".into()));
    }
    for (name, p) in [
        ("manual_rerun_prob", cfg.manual_rerun_prob),
        ("infra_failure_prob", cfg.infra_failure_prob),
        ("infra_no_report_prob", cfg.infra_no_report_prob),
        ("flaky_fraction", cfg.flaky_fraction),
        ("flake_rate_min", cfg.flake_rate_min),
        ("flake_rate_max", cfg.flake_rate_max),
        ("pr_break_prob", cfg.pr_break_prob),
        ("new_test_fraction", cfg.new_test_fraction),
        ("skipped_fraction", cfg.skipped_fraction),
        ("fix_fraction", cfg.fix_fraction),
        ("onset_fraction", cfg.onset_fraction),
    ] {
        check_prob(name, p)?;
    }
    for (i, j) in cfg.jobs.iter().enumerate() {
        check_prob("retry_prob", j.retry_prob)?;
        if j.name.is_empty() || j.name.contains(['/', '\\', ',', '"', '\n']) || j.name == ".." {
            return Err(invalid(format!(
                "job name {:?} cannot be a folder name",
                j.name
            )));
        }
        if cfg.jobs[..i].iter().any(|o| o.name == j.name) {
            return Err(invalid(format!("job {:?} is configured twice", j.name)));
        }
        if j.in_run_reruns > 10 {
            return Err(invalid(format!("job {}: in_run_reruns above 10", j.name)));
        }
        if let Some(p) = &j.matrix_of {
            let Some(primary) = cfg.jobs[..i].iter().find(|o| &o.name == p) else {
                return Err(invalid(format!(
                    "job {}: matrix_of {p:?} must name an earlier job",
                    j.name
                )));
            };
            if primary.matrix_of.is_some() {
                return Err(invalid(format!(
                    "job {}: matrix_of {p:?} is itself a matrix sibling",
                    j.name
                )));
            }
        }
    }
    if cfg.jobs.len() > u16::MAX as usize {
        return Err(invalid("too many jobs".into()));
    }
    for g in &cfg.cofailure_groups {
        if !cfg.jobs.iter().any(|j| j.name == g.job) {
            return Err(invalid(format!(
                "co-failure group names unknown job {:?}",
                g.job
            )));
        }
        check_prob("event_prob", g.event_prob)?;
        check_prob("member_prob", g.member_prob)?;
    }
    parse_start(&cfg.start)?;
    Ok(())
}

/// Hours into the day a commit lands: a working-day bump (UTC, teams across zones).
fn time_of_day(rng: &mut Rng) -> i64 {
    let h = (14.5 + 3.2 * rng.normal()).clamp(0.0, 23.99);
    (h * 3600.0) as i64
}

fn is_weekend(t: i64) -> bool {
    use chrono::{Datelike, Weekday};
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .unwrap_or(false)
}

fn sha(seed: u64, index: u64) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"flakehound-sim-commit");
    h.update(&seed.to_le_bytes());
    h.update(&index.to_le_bytes());
    h.finalize().to_hex()[..40].to_string()
}

impl World {
    pub fn build(cfg: &SimConfig) -> io::Result<World> {
        validate(cfg)?;
        let seed = cfg.seed;
        let start = parse_start(&cfg.start)?;
        let end = start + cfg.days as i64 * DAY;

        // --- Tests -------------------------------------------------------------------
        let mut tests: Vec<TestW> = Vec::new();
        let mut jobs: Vec<JobW> = Vec::new();
        let index_of: HashMap<&str, usize> = cfg
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.name.as_str(), i))
            .collect();
        for (ji, jc) in cfg.jobs.iter().enumerate() {
            let first = tests.len() as u32;
            let primary = jc.matrix_of.as_ref().map(|p| index_of[p.as_str()]);
            if let Some(p) = primary {
                // Same tests as the primary, same flaky ones (at a different rate).
                let range = jobs[p].tests.clone();
                for t in range {
                    let mut copy = tests[t as usize].clone();
                    copy.job = ji;
                    copy.parent = copy.parent.map(|x| x - jobs[p].tests.start + first);
                    copy.children = copy
                        .children
                        .iter()
                        .map(|x| x - jobs[p].tests.start + first)
                        .collect();
                    copy.own_rate = (copy.own_rate * jc.flake_rate_factor).min(0.6);
                    copy.group = None;
                    copy.platform_broken = false;
                    tests.push(copy);
                }
            } else {
                let mut rng = Rng::new(seed, Purpose::World, ji as u64);
                let gen = names::generate(jc.dialect, jc.tests, &mut rng);
                for g in &gen {
                    let identity = TestIdentity::new(&g.classname, &g.name, g.file.as_deref());
                    tests.push(TestW {
                        job: ji,
                        classname: g.classname.clone(),
                        name: g.name.clone(),
                        file: g.file.clone(),
                        suite: g.suite.clone(),
                        src: g.src.clone(),
                        func: g.func.clone(),
                        parent: g.parent.map(|p| first + p as u32),
                        children: Vec::new(),
                        base_time: 0.0,
                        own_rate: 0.0,
                        group: None,
                        templates: Vec::new(),
                        // Parameterised cases share their function's line.
                        line: 20
                            + (mix(TestIdentity::new(&g.classname, &g.func, None).0 as u64) % 400)
                                as u32,
                        intro: i64::MIN,
                        skipped: false,
                        platform_broken: false,
                        identity,
                        flaky_from: i64::MIN,
                        flaky_until: i64::MAX,
                    });
                }
                for i in first..tests.len() as u32 {
                    if let Some(p) = tests[i as usize].parent {
                        tests[p as usize].children.push(i);
                    }
                }
                let range = first as usize..tests.len();
                let plain: Vec<usize> = range
                    .clone()
                    .filter(|&i| tests[i].parent.is_none() && tests[i].children.is_empty())
                    .collect();
                // Always-skipped tests and tests added partway through.
                for &i in &plain {
                    if rng.chance(cfg.skipped_fraction) {
                        tests[i].skipped = true;
                    } else if rng.chance(cfg.new_test_fraction) {
                        let day = 0.2 + 0.6 * rng.f64();
                        tests[i].intro = start + (day * cfg.days as f64 * DAY as f64) as i64;
                    }
                }
                // Flaky tests: leaves only (a Go parent fails through its subtests).
                let mut eligible: Vec<usize> = range
                    .clone()
                    .filter(|&i| tests[i].children.is_empty() && !tests[i].skipped)
                    .collect();
                rng.shuffle(&mut eligible);
                let want = ((eligible.len() as f64 * cfg.flaky_fraction).round() as usize)
                    .max(cfg.min_flaky_per_job.min(eligible.len() / 4))
                    .min(eligible.len());
                let dialect = jc.dialect;
                let pool = names::flaky_templates(dialect).len();
                for &i in &eligible[..want] {
                    tests[i].own_rate = rng.log_uniform(cfg.flake_rate_min, cfg.flake_rate_max);
                    let a = rng.below(pool) as u16;
                    let mut t = vec![a];
                    if rng.chance(0.4) {
                        let b = rng.below(pool) as u16;
                        if b != a {
                            t.push(b);
                        }
                    }
                    tests[i].templates = t;
                }
                // Fixes and onsets from their own stream, so a config without them draws
                // the very same world as before they existed.
                let mut churn = Rng::new(seed, Purpose::World, 3000 + ji as u64);
                let span = cfg.days as f64 * DAY as f64;
                for &i in &eligible[..want] {
                    let (fix, onset, at) = (churn.f64(), churn.f64(), churn.f64());
                    if fix < cfg.fix_fraction {
                        tests[i].flaky_until = start + ((0.3 + 0.4 * at) * span) as i64;
                    } else if onset < cfg.onset_fraction {
                        tests[i].flaky_from = start + ((0.2 + 0.4 * at) * span) as i64;
                    }
                }
                // Run times: log-normal weights sharing the job's test time budget.
                let budget = jc.mean_duration_s * 0.7 * jc.parallelism.max(1) as f64;
                let weights: Vec<(usize, f64)> = range
                    .clone()
                    .filter(|&i| tests[i].children.is_empty() && !tests[i].skipped)
                    .map(|i| (i, (1.1 * rng.normal()).exp()))
                    .collect();
                let total: f64 = weights.iter().map(|w| w.1).sum::<f64>().max(1e-9);
                for (i, w) in weights {
                    tests[i].base_time = (budget * w / total).max(0.001);
                }
                for i in range.clone() {
                    if !tests[i].children.is_empty() {
                        let sum: f64 = tests[i]
                            .children
                            .iter()
                            .map(|&c| tests[c as usize].base_time)
                            .sum();
                        tests[i].base_time = sum + 0.001;
                    }
                }
            }
            let last = tests.len() as u32;
            jobs.push(JobW {
                cfg: jc.clone(),
                tests: first..last,
                draws: Vec::new(),
                overhead_s: jc.mean_duration_s * 0.3,
                tests_s: jc.mean_duration_s * 0.7,
            });
        }

        // --- Co-failure groups: neighbours (same class or file) sharing a cause ---------
        let mut groups = Vec::new();
        for (gi, gc) in cfg.cofailure_groups.iter().enumerate() {
            let ji = index_of[gc.job.as_str()];
            let mut rng = Rng::new(seed, Purpose::World, 1000 + gi as u64);
            let eligible: Vec<u32> = jobs[ji]
                .tests
                .clone()
                .filter(|&i| {
                    let t = &tests[i as usize];
                    t.children.is_empty() && !t.skipped && t.own_rate == 0.0 && t.group.is_none()
                })
                .collect();
            if eligible.len() < gc.size || gc.size == 0 {
                continue;
            }
            let at = rng.below(eligible.len() - gc.size + 1);
            let members: Vec<u32> = eligible[at..at + gc.size].to_vec();
            for &m in &members {
                tests[m as usize].group = Some(groups.len() as u32);
            }
            groups.push(GroupW {
                event_prob: gc.event_prob,
                member_prob: gc.member_prob,
                template: names::group_template(jobs[ji].cfg.dialect),
            });
        }

        // --- Platform breakages ------------------------------------------------------
        let mut platform: Vec<(u32, i64, i64)> = Vec::new();
        for (ji, jc) in cfg.jobs.iter().enumerate() {
            let mut rng = Rng::new(seed, Purpose::World, 2000 + ji as u64);
            for pb in &jc.platform_breaks {
                let mut eligible: Vec<u32> = jobs[ji]
                    .tests
                    .clone()
                    .filter(|&i| {
                        let t = &tests[i as usize];
                        t.children.is_empty()
                            && t.parent.is_none()
                            && !t.skipped
                            && !t.draws()
                            && !t.platform_broken
                            && t.intro == i64::MIN
                    })
                    .collect();
                rng.shuffle(&mut eligible);
                let from = start + (pb.from_day * DAY as f64) as i64;
                let to = start + (pb.to_day * DAY as f64) as i64;
                for &i in eligible.iter().take(pb.tests) {
                    tests[i as usize].platform_broken = true;
                    platform.push((i, from, to));
                }
            }
        }

        for job in &mut jobs {
            job.draws = job
                .tests
                .clone()
                .filter(|&i| tests[i as usize].draws())
                .collect();
        }

        // --- Commits -----------------------------------------------------------------
        let mut rng = Rng::new(seed, Purpose::Schedule, 0);
        // (time, branch, pr index or none)
        let mut raw: Vec<(i64, String, Option<usize>)> = Vec::new();
        let day_weight = |d: u32| {
            if is_weekend(start + d as i64 * DAY + DAY / 2) {
                cfg.weekend_factor
            } else {
                1.0
            }
        };
        if let Some(n) = cfg.main_commits_total {
            let span = (end - start) as f64;
            for i in 0..n {
                let t = start + ((i as f64 + 0.5) * span / n as f64) as i64;
                raw.push((t, "main".into(), None));
            }
        } else {
            for d in 0..cfg.days {
                let n = rng.poisson(cfg.main_commits_per_weekday * day_weight(d));
                for _ in 0..n {
                    let t = start + d as i64 * DAY + time_of_day(&mut rng);
                    raw.push((t, "main".into(), None));
                }
            }
        }
        let mut pr_opens: Vec<i64> = Vec::new();
        for d in 0..cfg.days {
            let n = rng.poisson(cfg.prs_per_weekday * day_weight(d));
            for _ in 0..n {
                pr_opens.push(start + d as i64 * DAY + time_of_day(&mut rng));
            }
        }
        pr_opens.sort_unstable();
        let mut pr_number = 1180u64;
        for (pi, &open) in pr_opens.iter().enumerate() {
            pr_number += rng.range(1, 3);
            let u = rng.f64();
            let n = if u < 0.35 {
                1
            } else if u < 0.65 {
                2
            } else if u < 0.85 {
                3
            } else {
                4
            };
            let mut t = open;
            for c in 0..n {
                if c > 0 {
                    t += 600 + (-(1.0 - rng.f64()).ln() * 6000.0) as i64;
                }
                if t < end {
                    raw.push((t, format!("pr/{pr_number}"), Some(pi)));
                }
            }
        }
        raw.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mut commits: Vec<Commit> = raw
            .iter()
            .enumerate()
            .map(|(i, (t, branch, _))| Commit {
                sha: sha(seed, i as u64),
                branch: branch.clone(),
                time: *t,
                broken: Vec::new(),
            })
            .collect();
        let main_idx: Vec<usize> = (0..commits.len())
            .filter(|&i| commits[i].branch == "main")
            .collect();
        let mut pr_commits: Vec<Vec<usize>> = vec![Vec::new(); pr_opens.len()];
        for (i, r) in raw.iter().enumerate() {
            if let Some(p) = r.2 {
                pr_commits[p].push(i);
            }
        }

        // --- Breakages ---------------------------------------------------------------
        // Matrix siblings: a code bug breaks the test on every job of the matrix.
        let family = |ji: usize| -> Vec<usize> {
            let root = cfg.jobs[ji]
                .matrix_of
                .as_ref()
                .map(|p| index_of[p.as_str()])
                .unwrap_or(ji);
            (0..cfg.jobs.len())
                .filter(|&k| {
                    k == root
                        || cfg.jobs[k]
                            .matrix_of
                            .as_ref()
                            .is_some_and(|p| index_of[p.as_str()] == root)
                })
                .collect()
        };
        let pick_broken = |rng: &mut Rng, ji: usize, n: usize, at: i64| -> Vec<u32> {
            let mut eligible: Vec<u32> = jobs[ji]
                .tests
                .clone()
                .filter(|&i| {
                    let t = &tests[i as usize];
                    t.children.is_empty() && !t.skipped && t.exists_at(at) && !t.platform_broken
                })
                .collect();
            rng.shuffle(&mut eligible);
            eligible.truncate(n);
            let mut out = Vec::new();
            for local in eligible.iter().map(|&i| i - jobs[ji].tests.start) {
                for k in family(ji) {
                    out.push(jobs[k].tests.start + local);
                }
            }
            out
        };
        let mut rng = Rng::new(seed, Purpose::Breakage, 0);
        if main_idx.len() >= 8 {
            for _ in 0..cfg.main_regressions {
                let len = rng.range(2, 4) as usize;
                let s = 1 + rng.below(main_idx.len() - len - 2);
                let from = commits[main_idx[s]].time;
                let to = commits[main_idx[s + len]].time;
                let ji = rng.below(cfg.jobs.len());
                let n = rng.range(1, 2) as usize;
                let broken = pick_broken(&mut rng, ji, n, from);
                for &c in &main_idx[s..s + len] {
                    commits[c].broken.extend(&broken);
                }
                // PRs are tested merged with main: while main is broken, so are they.
                for c in commits.iter_mut() {
                    if c.branch != "main" && c.time >= from && c.time < to {
                        c.broken.extend(&broken);
                    }
                }
            }
        }
        let pr_jobs: Vec<usize> = (0..cfg.jobs.len())
            .filter(|&j| cfg.jobs[j].on_prs)
            .collect();
        for list in &pr_commits {
            if list.len() < 2 || pr_jobs.is_empty() {
                continue;
            }
            if !rng.chance(cfg.pr_break_prob) {
                continue;
            }
            let j = list[rng.below(list.len() - 1)];
            let ji = *rng.pick(&pr_jobs);
            let n = rng.range(1, 3) as usize;
            let broken = pick_broken(&mut rng, ji, n, commits[j].time);
            commits[j].broken.extend(broken);
        }
        for &(test, from, to) in &platform {
            for c in commits.iter_mut() {
                if c.time >= from && c.time < to {
                    c.broken.push(test);
                }
            }
        }
        for c in &mut commits {
            c.broken.sort_unstable();
            c.broken.dedup();
        }

        // --- Runs --------------------------------------------------------------------
        let mut rng = Rng::new(seed, Purpose::Schedule, 1);
        let all_jobs: Vec<u16> = (0..cfg.jobs.len() as u16).collect();
        let pr_job_ids: Vec<u16> = pr_jobs.iter().map(|&j| j as u16).collect();
        let mut runs: Vec<Run> = Vec::new();
        for (ci, c) in commits.iter().enumerate() {
            let jobs_here = if c.branch == "main" {
                all_jobs.clone()
            } else {
                pr_job_ids.clone()
            };
            if jobs_here.is_empty() {
                continue;
            }
            let t = c.time + rng.range(20, 120) as i64;
            runs.push(Run {
                run_id: 0,
                commit: ci as u32,
                started_at: t,
                jobs: jobs_here.clone(),
            });
            if rng.chance(cfg.manual_rerun_prob) {
                let later = t + rng.range(3600, 8 * 3600) as i64;
                if later < end {
                    runs.push(Run {
                        run_id: 0,
                        commit: ci as u32,
                        started_at: later,
                        jobs: jobs_here,
                    });
                }
            }
        }
        if cfg.nightly {
            for d in 0..cfg.days {
                let t = start + d as i64 * DAY + 2 * 3600 + rng.range(0, 1200) as i64;
                let head = main_idx.iter().rev().find(|&&i| commits[i].time <= t - 300);
                if let Some(&h) = head {
                    runs.push(Run {
                        run_id: 0,
                        commit: h as u32,
                        started_at: t,
                        jobs: all_jobs.clone(),
                    });
                }
            }
        }
        runs.sort_by_key(|r| (r.started_at, r.commit));
        let mut id = 4100u64;
        for r in &mut runs {
            id += rng.range(1, 3);
            r.run_id = id;
        }

        Ok(World {
            seed,
            days: cfg.days,
            max_attempts: cfg.max_attempts,
            infra_failure_prob: cfg.infra_failure_prob,
            infra_no_report_prob: cfg.infra_no_report_prob,
            jobs,
            tests,
            groups,
            commits,
            runs,
        })
    }

    pub fn dialect(&self, job: usize) -> Dialect {
        self.jobs[job].cfg.dialect
    }

    /// Per-attempt time noise of one test, keyed so reports are deterministic.
    pub fn test_time(&self, run: usize, attempt: u32, test: u32, rerun: usize) -> f64 {
        let t = &self.tests[test as usize];
        let h = key(
            self.seed,
            Purpose::TestTime,
            &[run as u64, attempt as u64, test as u64, rerun as u64],
        );
        t.base_time * lognormal(h, 0.18)
    }
}
