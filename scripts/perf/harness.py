#!/usr/bin/env python3
"""flakehound performance harness: measures, then prints one markdown report.

Driven by scripts/perf/run.sh (which builds and installs the peers); see docs/performance.md.
Environment: FH (flakehound binary), FLOORS_BIN (the floors bench binary), PEERS_VENV,
PERF_WORK (scratch folder), PERF_REPEAT (3), PERF_SCALES ("1,10"; add 50 for 50M results),
PERF_PEERS_BIG (1: also run the peers on the 1M history), PERF_ONLY (comma list of steps).
Every measurement is appended to $PERF_WORK/results.jsonl as it is taken, so an
interrupted run keeps its numbers; `harness.py table` prints the table from that file.
"""
import csv
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peers  # noqa: E402

FH = os.environ.get("FH", os.path.join(HERE, "..", "..", "target", "release", "flakehound"))
FLOORS_BIN = os.environ.get("FLOORS_BIN", "")
VENV = os.environ.get("PEERS_VENV", "")
W = os.environ.get("PERF_WORK", "/tmp/flakehound-perf")
REPEAT = int(os.environ.get("PERF_REPEAT", "3"))
SCALES = [int(s) for s in os.environ.get("PERF_SCALES", "1,10").split(",") if s]
ONLY = set(filter(None, os.environ.get("PERF_ONLY", "").split(",")))
RESULTS = os.path.join(W, "results.jsonl")
TESTS_PER_RUN = 800


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load():
    return open("/proc/loadavg").read().split()[0]


def record(**kv):
    kv["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(RESULTS, "a") as f:
        f.write(json.dumps(kv) + "\n")
    log("  ", json.dumps(kv))


def timed(cmd, stdout=subprocess.DEVNULL, cwd=None, env=None):
    """Run cmd under /usr/bin/time -v: (wall s measured around the process, peak RSS MB, load before)."""
    ld = load()
    tf = os.path.join(W, ".time")
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-v", "-o", tf] + cmd, stdout=stdout,
                       stderr=subprocess.PIPE, cwd=cwd, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        log("FAILED", cmd, r.stderr.decode()[-2000:])
    txt = open(tf).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", txt).group(1)) / 1024
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", txt).group(1)) for k in ("User", "System"))
    CPU.append(cpu)
    return wall, rss, float(ld), r.returncode


CPU = []


def repeat(name, cmd, n=REPEAT, before=None, **kw):
    walls, rsss, loads = [], [], []
    CPU.clear()
    for _ in range(n):
        if before:
            before()
        w, r, l, rc = timed(cmd, **kw)
        walls.append(w), rsss.append(r), loads.append(l)
    rec = dict(name=name, wall_s=round(statistics.median(walls), 4), walls=[round(x, 4) for x in walls],
               rss_mb=round(statistics.median(rsss), 1), cpu_s=round(statistics.median(CPU), 4),
               loads=loads, rc=rc)
    record(**rec)
    return rec


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------- datasets
def simulate(name, *args):
    d = os.path.join(W, name)
    if not os.path.exists(os.path.join(d, "runs.csv")):
        log(f"simulate {name} {args}")
        sh([FH, "simulate", "--out", d, *args], stdout=subprocess.DEVNULL)
    return d


def surefire5k():
    d = os.path.join(W, "surefire5k")
    if not os.path.exists(os.path.join(d, "runs.csv")):
        sh([sys.executable, os.path.join(HERE, "gen_surefire.py"), d, "5000", "100"])
    return d


def replicate(src, name, k):
    """A manifest of k copies of src's runs under other run ids, commits and times (same files)."""
    d = os.path.join(W, name)
    os.makedirs(d, exist_ok=True)
    m = os.path.join(d, "runs.csv")
    if os.path.exists(m):
        return d
    rows = list(csv.DictReader(open(os.path.join(src, "runs.csv"))))
    from datetime import datetime, timedelta
    parse = lambda x: datetime.strptime(x, "%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    t = [parse(r["started_at"]).timestamp() for r in rows]
    span = max(t) - min(t) + 1800
    with open(m, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for c in range(k):
            for r in rows:
                r2 = dict(r)
                r2["path"] = os.path.relpath(os.path.join(src, r["path"]), d)
                r2["run_id"] = f"{r['run_id']}-c{c}"
                r2["commit"] = f"c{c}{r['commit'][2:]}"
                r2["started_at"] = (parse(r["started_at"]) + timedelta(seconds=c * span)).strftime("%Y-%m-%dT%H:%M:%SZ")
                w.writerow(r2)
    return d


def files_of(d):
    return [f for row in peers.manifest_rows(d) for f in row["files"]]


# ---------------------------------------------------------------- measurements
def db_stats(db):
    c = sqlite3.connect(db)
    n = c.execute("SELECT count(*) FROM result").fetchone()[0]
    pc = c.execute("PRAGMA page_count").fetchone()[0]
    ps = c.execute("PRAGMA page_size").fetchone()[0]
    fl = c.execute("PRAGMA freelist_count").fetchone()[0]
    c.close()
    return n, pc * ps, fl * ps


def rm_db(db):
    for s in ("", "-wal", "-shm"):
        if os.path.exists(db + s):
            os.remove(db + s)


def ingest_set(name, d, n=REPEAT, floors=True):
    """Read floor, floors bench, ingest into a fresh DB n times; returns the DB path."""
    fl = files_of(d)
    listf = os.path.join(W, f".{name}.files")
    with open(listf, "wb") as f:
        f.write(b"\0".join(x.encode() for x in fl))
    nbytes = sum(os.path.getsize(x) for x in fl)
    cat = ["sh", "-c", f"xargs -0 cat < {listf} > /dev/null"]
    subprocess.run(cat)  # warm the page cache
    rec = repeat(f"{name}/read_cat", cat, n=n)
    record(name=f"{name}/files", files=len(fl), bytes=nbytes)
    if floors and FLOORS_BIN:
        ld = load()
        out = subprocess.run([FLOORS_BIN], env=dict(os.environ, FLOORS_MANIFEST=os.path.join(d, "runs.csv"),
                                                     FLOORS_DB=os.path.join(W, "floors.db")),
                             capture_output=True, text=True)
        line = [x for x in out.stdout.splitlines() if x.startswith("{")]
        if line:
            record(name=f"{name}/floors", load=ld, **json.loads(line[-1]))
        else:
            log("floors failed", out.stderr[-2000:])
    db = os.path.join(W, f"{name}.db")
    r = repeat(f"{name}/ingest", [FH, "--db", db, "ingest", "--manifest", os.path.join(d, "runs.csv")],
               n=n, before=lambda: rm_db(db))
    results, size, free = db_stats(db)
    record(name=f"{name}/storage", results=results, db_bytes=size, free_bytes=free,
           bytes_per_result=round(size / max(results, 1), 2),
           results_per_s=round(results / r["wall_s"]), ingest_vs_cat=round(r["wall_s"] / rec["wall_s"], 2))
    return db


def queries(name, db, n=REPEAT):
    for cmd in (["flaky"], ["report"], ["backlog"]):
        repeat(f"{name}/{cmd[0]}", [FH, "--db", db, *cmd], n=n)
    for win in ("1d", "30d", "3650d"):
        repeat(f"{name}/flaky_{win}", [FH, "--db", db, "flaky", "--window", win], n=n)


def ci_post_step(name, db, n=REPEAT):
    d = simulate("ci10k", "--preset", "bench", "--runs", "1", "--tests", "10000", "--seed", "99")
    f = files_of(d)
    c = sqlite3.connect(db)
    last = c.execute("SELECT max(started_at) FROM run WHERE started_at < 4000000000").fetchone()[0]
    c.close()
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last + 3600))
    for i in range(n):
        rid = f"ci-{int(time.time())}-{i}"
        w, rss, ld, rc = timed([FH, "--db", db, "ingest", "--commit", f"{i:040x}", "--branch", "main",
                                "--job", "bench", "--run-id", rid, "--attempt", "1",
                                "--started-at", at, *f])
        record(name=f"{name}/ci_ingest_10k", wall_s=round(w, 4), cpu_s=CPU[-1], rss_mb=round(rss, 1), load=ld, rc=rc,
               tests=10000, file_bytes=os.path.getsize(f[0]))


def peer_cmds(d):
    pd = os.path.join(d, "peers")
    return {
        "flakeguard": [os.path.join(VENV, "bin", "flakeguard"), "scan", "--manifest",
                       os.path.join(pd, "flakeguard.json"), "--format", "json", "-o", os.path.join(pd, "fg.json")],
        "flakemap": ["sh", "-c", f"{os.path.join(VENV, 'bin', 'flakemap')} {os.path.join(pd, 'flakemap')} --json > {os.path.join(pd, 'fm.json')}"],
    }


def side_by_side(name, d, n=REPEAT):
    if not os.path.exists(os.path.join(d, "peers", "flakeguard.json")):
        peers.prep(d)
    pd = os.path.join(d, "peers")
    db = os.path.join(pd, "ours.db")
    ours_json = os.path.join(pd, "ours.json")
    script = (f"rm -f {db} {db}-wal {db}-shm && {FH} --db {db} ingest --manifest {d}/runs.csv > /dev/null && "
              f"{FH} --db {db} flaky --window 3650d --format json > {ours_json}")
    repeat(f"peers/{name}/flakehound", ["sh", "-c", script], n=n)
    for peer, cmd in peer_cmds(d).items():
        repeat(f"peers/{name}/{peer}", cmd, n=n)
    out = subprocess.run([sys.executable, os.path.join(HERE, "peers.py"), "eval", d, ours_json,
                          os.path.join(pd, "fg.json"), os.path.join(pd, "fm.json")], capture_output=True, text=True)
    if out.returncode == 0:
        record(name=f"peers/{name}/quality", **json.loads(out.stdout))
    else:
        log("eval failed", out.stderr[-2000:])


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    free = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.strip()
    record(name="machine", nproc=os.cpu_count(), cpu=cpu, kernel=os.uname().release, free_g=free,
           uptime=subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
           rustc=subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip(),
           fh=subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip())


def want(step):
    return not ONLY or step in ONLY


def main():
    os.makedirs(W, exist_ok=True)
    machine()
    if want("small"):
        ingest_set("demo", simulate("demo", "--preset", "demo"))
        ingest_set("surefire5k", surefire5k())
    big = {}
    for s in SCALES:
        if s <= 10:
            d = simulate(f"bench{s}m", "--preset", "bench", "--runs", str(s * 1_000_000 // TESTS_PER_RUN),
                         "--tests", str(TESTS_PER_RUN))
        else:  # reuse the 10M files under other run ids, commits and times
            d = replicate(simulate("bench10m", "--preset", "bench", "--runs", str(12_500), "--tests", "800"),
                          f"bench{s}m", s // 10)
        if want("scale"):
            db = ingest_set(f"bench{s}m", d, n=REPEAT if s <= 10 else 1)
            queries(f"bench{s}m", db, n=REPEAT if s <= 10 else 1)
            big[s] = db
    if want("windows"):  # the queries again on the DBs already built
        for s in SCALES:
            queries(f"bench{s}m", os.path.join(W, f"bench{s}m.db"), n=REPEAT if s <= 10 else 1)
    if want("ci") and 10 in SCALES:
        ci_post_step("bench10m", os.path.join(W, "bench10m.db"))
    if want("peers"):
        side_by_side("demo", simulate("demo", "--preset", "demo"))
        if os.environ.get("PERF_PEERS_BIG", "1") == "1":
            side_by_side("bench1m", simulate("bench1m", "--preset", "bench", "--runs", "1250", "--tests", "800"), n=1)
    table()


# ---------------------------------------------------------------- the table
def table():
    rs = {}
    for line in open(RESULTS):
        r = json.loads(line)
        rs[r["name"]] = r  # the latest measurement of each name wins
    g = lambda k, f="wall_s": rs.get(k, {}).get(f)  # noqa: E731
    m = rs.get("machine", {})
    out = [f"Measured {m.get('at','?')} on {m.get('cpu','?')}, {m.get('nproc')} cores, kernel {m.get('kernel')}, "
           f"commit {m.get('fh')}; {m.get('uptime','')}. Medians of the repeats; load = 1-min load average "
           "before each repeat. Warm page cache throughout.", ""]
    out += ["### Ingest vs floors", "",
            "| data | files | MB | results | read (`cat`) s | quick-xml 1 thread s | quick-xml all cores s | SQLite bulk insert s | **ingest s** (repeats) | ingest CPU s (user+sys) | results/s | ingest / read | ingest / larger floor | peak RSS MB | B/result | load |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ["demo", "surefire5k"] + [f"bench{s}m" for s in (1, 10, 50)]:
        if f"{name}/ingest" not in rs:
            continue
        fi, fl, st, ing, cat = (rs.get(f"{name}/{k}", {}) for k in ("files", "floors", "storage", "ingest", "read_cat"))
        floor = max(x for x in (cat.get("wall_s") or 0, fl.get("tokenize_par_s") or 0, fl.get("insert_s") or 0))
        out.append(f"| {name} | {fi.get('files')} | {fi.get('bytes', 0)/1e6:.0f} | {st.get('results')} | {cat.get('wall_s')} | "
                   f"{fl.get('tokenize_s')} | {fl.get('tokenize_par_s')} | {fl.get('insert_s')} | **{ing.get('wall_s')}** "
                   f"({', '.join(str(x) for x in ing.get('walls', []))}) | {ing.get('cpu_s')} | {st.get('results_per_s')} | {st.get('ingest_vs_cat')} | "
                   f"{round(ing['wall_s']/floor, 2) if floor else '-'} | {ing.get('rss_mb')} | {st.get('bytes_per_result')} | {ing.get('loads')} |")
    out += ["", "### Queries and growth", "",
            "| history | results | ingest s | results/s | `flaky` (30d) s / RSS MB | `report` s / MB | `backlog` s / MB | `flaky --window 1d` s | `flaky --window 30d` s | `flaky --window 3650d` (all) s / MB | B/result |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in (1, 10, 50):
        name = f"bench{s}m"
        if f"{name}/flaky" not in rs:
            continue
        q = lambda c: f"{g(f'{name}/{c}')} / {g(f'{name}/{c}', 'rss_mb')}"  # noqa: E731
        out.append(f"| {s}M | {g(f'{name}/storage','results')} | {g(f'{name}/ingest')} | {g(f'{name}/storage','results_per_s')} | "
                   f"{q('flaky')} | {q('report')} | {q('backlog')} | {g(f'{name}/flaky_1d')} | {g(f'{name}/flaky_30d')} | {q('flaky_3650d')} | "
                   f"{g(f'{name}/storage','bytes_per_result')} |")
    ci = [json.loads(l) for l in open(RESULTS) if 'ci_ingest_10k' in l]
    if ci:
        ws = [x["wall_s"] for x in ci]
        out += ["", f"CI post-step (one 10,000-test run into the 10M-result DB, process start to exit), every repeat so far: median **{statistics.median(ws):.3f} s** "
                f"({', '.join(f'{x:.3f}' for x in ws)}), CPU (user+sys) {[x.get('cpu_s') for x in ci]} s, peak RSS {ci[-1]['rss_mb']} MB, load {[x['load'] for x in ci]}."]
    for ds in ("demo", "bench1m"):
        q = rs.get(f"peers/{ds}/quality")
        if not q:
            continue
        out += ["", f"### Side by side: `{ds}` (ingest + `flaky --window 3650d` for flakehound; one scan for the peers)", "",
                "| tool | wall s | peak RSS MB | wall ours/theirs | RSS ours/theirs | flagged (tests) | precision | recall | breakages flagged |",
                "|---|---|---|---|---|---|---|---|---|"]
        ow, orss = g(f"peers/{ds}/flakehound"), g(f"peers/{ds}/flakehound", "rss_mb")
        for tool in ("flakehound", "flakeguard", "flakemap"):
            t = rs.get(f"peers/{ds}/{tool}", {})
            e = q.get(tool, {})
            ratio = "-" if tool == "flakehound" else f"{ow/t['wall_s']:.3f}"
            rr = "-" if tool == "flakehound" else f"{orss/t['rss_mb']:.2f}"
            out.append(f"| {tool} | {t.get('wall_s')} | {t.get('rss_mb')} | {ratio} | {rr} | {e.get('flagged')} | {e.get('precision')} | "
                       f"{e.get('recall')} (of {e.get('observable')}) | {e.get('breakages_flagged')} |")
        pj = q.get("flakehound_per_job", {})
        out.append(f"| flakehound per (test, job) | | | | | {pj.get('flagged')} | {pj.get('precision')} | {pj.get('recall')} (of {pj.get('observable')}) | |")
    print("\n".join(out))


if __name__ == "__main__":
    if sys.argv[1:] == ["table"]:
        table()
    else:
        main()
