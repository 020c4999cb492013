#!/usr/bin/env python3
"""Verbose Surefire reports spread over many small files: OUT/runs.csv + OUT/reports/run<N>/TEST-*.xml.
Each file is one test class of 8 cases with <system-out> (and an occasional failure with a
stack trace), about 2-4 KB, as Maven writes them. Usage: gen_surefire.py OUT [FILES] [FILES_PER_RUN]"""
import os
import random
import sys
from datetime import datetime, timezone

out = sys.argv[1]
n_files = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
per_run = int(sys.argv[3]) if len(sys.argv) > 3 else 100
rng = random.Random(11)
os.makedirs(out, exist_ok=True)
rows = ["path,commit,branch,job,run_id,attempt,started_at,duration_s"]
runs = n_files // per_run
LOG = "".join(f"2026-11-20 10:04:{i:02d}.123 INFO  [main] c.a.s.Service - step {i} done, state=OK id=0x{i*7919:08x}\n" for i in range(12))
for r in range(runs):
    rdir = os.path.join(out, "reports", f"run{r:04d}")
    os.makedirs(rdir, exist_ok=True)
    for c in range(per_run):
        cls = f"com.acme.module{c % 10}.Service{c}IT"
        cases = []
        for m in range(8):
            body = ""
            if rng.random() < 0.01:
                body = ('<failure message="expected:&lt;3&gt; but was:&lt;4&gt;" type="java.lang.AssertionError">'
                        "java.lang.AssertionError: expected:&lt;3&gt; but was:&lt;4&gt;\n"
                        + "".join(f"\tat {cls}.method{m}({cls.split('.')[-1]}.java:{40+k})\n" for k in range(10))
                        + "</failure>")
            cases.append(f'  <testcase name="method{m}" classname="{cls}" time="0.{rng.randint(1,999):03d}">{body}'
                         f"<system-out><![CDATA[{LOG}]]></system-out></testcase>")
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
               f'name="{cls}" time="1.234" tests="8" errors="0" skipped="0" failures="0">\n'
               '  <properties>\n    <property name="java.version" value="21.0.2"/>\n    <property name="os.name" value="Linux"/>\n  </properties>\n'
               + "\n".join(cases) + "\n</testsuite>\n")
        with open(os.path.join(rdir, f"TEST-{cls}.xml"), "w") as f:
            f.write(xml)
    started = datetime.fromtimestamp(1763600000 + r * 900, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows.append(f"reports/run{r:04d},{r:040x},main,it,{r},1,{started},900")
with open(os.path.join(out, "runs.csv"), "w") as f:
    f.write("\n".join(rows) + "\n")
print(f"wrote {runs * per_run} files in {runs} runs to {out}")
