#!/usr/bin/env python3
"""Peer side of the performance harness.

  peers.py prep DIR          DIR/runs.csv (a flakehound ingest manifest) -> the peers' inputs:
                             DIR/peers/flakeguard.json   {"runs":[{"commit","label","reports":[...]}]}
                             DIR/peers/flakemap/<run>/<n>.xml (hard links) + meta.json sidecar
  peers.py files DIR         print every report file of the manifest (for the read floor)
  peers.py eval DIR OURS FG FM
                             precision / recall against DIR/truth.json, as JSON lines

Peers do not know jobs. A manifest row is one job attempt; each peer gets it as one run
(label / run id = job:run_id:attempt). flakemap's meta.json also gets runner=job, the
field its convention has for the environment, so its rerun signal compares like with like.
Evaluation is at test level, (classname, name): a test is positive when it is flaky in any
job and its flakiness showed (flaky_failures > 0); a flagged test is a true positive when it
is flaky in any job, else a false positive (counted apart when it is broken_sometimes or
platform_broken in some job). Ours is evaluated the same way (the union of its flagged jobs)
and also per (test, job), as src/eval.rs does.
"""
import csv
import json
import os
import sys
from datetime import datetime, timezone

EXTS = (".xml", ".junit-xml", ".xml.gz")


def manifest_rows(d):
    with open(os.path.join(d, "runs.csv"), newline="") as f:
        for row in csv.DictReader(f):
            p = os.path.join(d, row["path"]) if row["path"] else ""
            files = []
            if p and os.path.isdir(p):
                for root, _, names in os.walk(p):
                    files += [os.path.join(root, n) for n in names if n.endswith(EXTS)]
                files.sort()
            elif p:
                files = [p]
            row["files"] = files
            yield row


def label(row):
    return f"{row['job']}:{row['run_id']}:{row['attempt']}"


def iso(ts):
    try:
        return datetime.fromtimestamp(int(ts), tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except ValueError:
        return ts


def prep(d):
    out = os.path.join(d, "peers")
    fm_root = os.path.join(out, "flakemap")
    os.makedirs(fm_root, exist_ok=True)
    runs = []
    for i, row in enumerate(manifest_rows(d)):
        if not row["files"]:
            continue
        runs.append({"commit": row["commit"], "label": label(row),
                     "reports": [os.path.abspath(f) for f in row["files"]]})
        rdir = os.path.join(fm_root, f"r{i:07d}")
        os.makedirs(rdir, exist_ok=True)
        for n, f in enumerate(row["files"]):
            ext = ".xml.gz" if f.endswith(".gz") else ".xml"
            dst = os.path.join(rdir, f"{n:04d}{ext}")
            if not os.path.exists(dst):
                os.link(f, dst)
        with open(os.path.join(rdir, "meta.json"), "w") as m:
            json.dump({"run_id": label(row), "commit": row["commit"], "branch": row["branch"],
                       "timestamp": iso(row["started_at"]), "runner": row["job"],
                       "sequence": i}, m)
    with open(os.path.join(out, "flakeguard.json"), "w") as f:
        json.dump({"runs": runs}, f)
    print(f"peers inputs: {len(runs)} runs in {out}")


def files(d):
    for row in manifest_rows(d):
        for f in row["files"]:
            print(f)


def pr(flagged, truth_kinds, observable):
    tp = sum(1 for k in flagged if "flaky" in truth_kinds.get(k, ()))
    traps = sum(1 for k in flagged if "flaky" not in truth_kinds.get(k, ())
                and truth_kinds.get(k, set()) & {"broken_sometimes", "platform_broken"})
    found = sum(1 for k in observable if k in flagged)
    return {"flagged": len(flagged), "tp": tp, "fp": len(flagged) - tp, "breakages_flagged": traps,
            "precision": round(tp / len(flagged), 3) if flagged else 1.0,
            "observable": len(observable),
            "recall": round(found / len(observable), 3) if observable else 1.0}


def evaluate(d, ours_path, fg_path, fm_path):
    truth = json.load(open(os.path.join(d, "truth.json")))
    tests = truth["tests"]
    kinds, observable, by_dotted = {}, set(), {}
    by_id_job = {}
    for t in tests:
        k = (t["classname"], t["name"])
        kinds.setdefault(k, set()).add(t["kind"])
        by_dotted[f"{t['classname']}.{t['name']}" if t["classname"] else t["name"]] = k
        by_id_job[(t["id"], t["job"])] = t
        if t["kind"] == "flaky" and t.get("flaky_failures", 0) > 0:
            observable.add(k)
    res = {}
    ours = json.load(open(ours_path))
    res["flakehound"] = pr({(t["classname"], t["name"]) for t in ours}, kinds, observable)
    # per (test, job), as src/eval.rs
    tp = sum(1 for t in ours if by_id_job.get((t["test_id"], t["job"]), {}).get("kind") == "flaky")
    obs = [t for t in tests if t["kind"] == "flaky" and t.get("flaky_failures", 0) > 0]
    flagged = {(t["test_id"], t["job"]) for t in ours}
    found = sum(1 for t in obs if (t["id"], t["job"]) in flagged)
    res["flakehound_per_job"] = {"flagged": len(ours), "tp": tp,
                                 "precision": round(tp / len(ours), 3) if ours else 1.0,
                                 "observable": len(obs),
                                 "recall": round(found / len(obs), 3) if obs else 1.0}
    if fg_path and os.path.exists(fg_path):
        fg = json.load(open(fg_path))
        res["flakeguard"] = pr({(t["classname"], t["name"]) for t in fg["flaky_tests"]}, kinds, observable)
    if fm_path and os.path.exists(fm_path):
        fm = json.load(open(fm_path))
        names = {t["test"] for t in fm["tests"] if t["classification"] == "flaky"}
        res["flakemap"] = pr({by_dotted.get(n, ("?", n)) for n in names}, kinds, observable)
    print(json.dumps(res))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "prep":
        prep(sys.argv[2])
    elif cmd == "files":
        files(sys.argv[2])
    elif cmd == "eval":
        evaluate(*sys.argv[2:6])
    else:
        sys.exit(f"unknown command {cmd}")
