"""Run every benchmark in turn (``make bench``); figures are printed, nothing fails on a miss.

Each benchmark runs as its own process against the same throwaway PostgreSQL and Redis
(``scripts/testenv.py`` starts them around this script), so one benchmark's connections,
caches and forked workers never colour the next one's figures. Each starts from what the
previous one left in the database (they migrate, and their rows are told apart by source,
channel or name). Options after ``--`` go to the one benchmark chosen with ``--only``,
e.g. ``make bench BENCH_ARGS="--only rating -- --records 20000"``.

The benchmarks, in order: ``rating`` (bulk UDR rating against a psycopg COPY),
``orders_http`` (PPV orders through gunicorn), ``billing_run`` (when ``bench/billing_run.py``
exists), ``analytics`` (rollups, dashboard and staff API timings, recommendation quality).
At the end, every line a benchmark printed that compares a figure with its DESIGN.md §5
target is listed again, so the run ends with the whole verdict in one place.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# A line that compares a figure with its target: "[target >= 10,000] OK", "... (met)", "(MISSED)".
VERDICT = re.compile(r"\[target[^]]*\]|\((met|MISSED)\b|\(target [^)]*: (met|MISSED)\)")
BENCHMARKS = ("rating", "orders_http", "portal_http", "billing_run", "analytics")


def main() -> int:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="Run only this benchmark (repeatable).")
    args = parser.parse_args(argv)
    if extra and len(args.only or ()) != 1:
        parser.error("options after -- need exactly one --only benchmark (each has its own options)")
    failed, verdicts = [], []
    for name in args.only or BENCHMARKS:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"== {name}: {script.name} not found, skipped", flush=True)
            continue
        print(f"== {name} ({script.relative_to(HERE.parent)})", flush=True)
        started = time.perf_counter()
        with subprocess.Popen([sys.executable, str(script), *extra], cwd=HERE.parent, stdout=subprocess.PIPE,
                              text=True, bufsize=1) as process:
            for line in process.stdout:  # shown as it comes, and the verdicts kept for the summary
                print(line, end="", flush=True)
                if VERDICT.search(line):
                    verdicts.append((name, line.strip()))
        status = process.returncode
        print(f"== {name}: {'done' if status == 0 else f'exit status {status}'} in {time.perf_counter() - started:.0f}s\n", flush=True)
        if status != 0:
            failed.append(name)
    if verdicts:
        print("== DESIGN.md §5 targets, as measured in this run (each benchmark's verdict lines):")
        for name, line in verdicts:
            print(f"  {name:<12} {line}")
    if failed:
        print(f"benchmarks that did not finish: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
