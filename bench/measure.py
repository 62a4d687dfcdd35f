#!/usr/bin/env python3
"""Measures a whole process for scripts/bench, and prints the table of one run.

  measure.py run RESULTS --id ID --label TEXT --events N [--peer ID] [--usage-from FILE] -- COMMAND...
      Runs COMMAND (stdin closed, stdout and stderr inherited), waits for it with wait4(2) and appends one
      JSON line to RESULTS: wall time, the child's user and system CPU and peak RSS (its rusage: every
      thread of the process), its exit status and the load average before and after. The peak RSS is
      never below this script's own RSS (about 10 MB): Linux counts the address space a child starts
      with, its spawner's, in its ru_maxrss. Exits with the command's status (so a failed delivery fails
      the benchmark: a run that delivered nothing is not fast).
      With --usage-from, COMMAND is a harness that runs and reaps the measured process itself (lambda-bench:
      a function under the Lambda Runtime API emulator) and writes that process's usage to FILE as JSON
      (wall_s, user_s, sys_s, max_rss_kb: its wait4(2) CPU and the peak RSS of its own address space);
      the record holds those figures, not the harness's own.

  measure.py table RESULTS
      Prints the machine and a Markdown table: per run, CPU per event (user + sys), peak RSS, events/s,
      the CPU ratio to its peer (--peer: the reference peer's row for the same destination) and the
      validation pass's user CPU divided by this run's (the row with --id validate).

  measure.py versus RESULTS ID BASELINE-ID
      Prints the CPU per event of the runs ID against the runs BASELINE-ID (user + sys, and user alone):
      the median and range of each, the difference of the medians in per cent, and the median and range
      of the differences of the runs paired in the order they were made (the k-th of ID with the k-th of
      BASELINE-ID: scripts/bench runs them one after the other, so both saw about the same load), with
      the load average over all of them: what a change costs, measured in one run.
"""
import json
import os
import platform
import subprocess
import sys
import time


def run(argv):
    results, rest = argv[0], argv[1:]
    if "--" not in rest:
        sys.exit("measure.py run: COMMAND must follow --")
    split = rest.index("--")
    options, command = rest[:split], rest[split + 1:]
    fields = dict(zip(options[0::2], options[1::2]))
    if len(options) % 2 or not {"--id", "--label", "--events"} <= fields.keys() or not command:
        sys.exit("usage: measure.py run RESULTS --id ID --label TEXT --events N [--peer ID] [--usage-from FILE] -- COMMAND...")
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    measured = {"wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "max_rss_kb": usage.ru_maxrss}
    if "--usage-from" in fields and child.returncode == 0:
        with open(fields["--usage-from"]) as reported:
            reported = json.load(reported)
        measured = {name: reported[name] for name in measured}
    record = {
        "id": fields["--id"],
        "label": fields["--label"],
        "events": int(fields["--events"]),
        "peer": fields.get("--peer"),
        **measured,
        "exit": child.returncode,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    with open(results, "a") as out:
        out.write(json.dumps(record) + "\n")
    print(
        f"{record['label']}: {wall:.2f} s wall, {record['user_s']:.2f} s user, {record['sys_s']:.2f} s sys, "
        f"{record['max_rss_kb'] / 1024:.0f} MB peak RSS, exit {record['exit']}",
        file=sys.stderr,
    )
    return child.returncode


def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(argv):
    with open(argv[0]) as results:
        rows = [json.loads(line) for line in results if line.strip()]
    by_id = {row["id"]: row for row in rows}
    validate = by_id.get("validate")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cores} cores ({cpu_model()}), {platform.system()} {platform.release()}, Python {platform.python_version()}")
    print()
    print("| run | events | CPU µs/event (user+sys) | user s | sys s | peak RSS MB | events/s | CPU vs the peer | validation ÷ this (user CPU) | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        cpu = row["user_s"] + row["sys_s"]
        per_event = cpu * 1e6 / row["events"]
        peer = by_id.get(row["peer"]) if row["peer"] else None
        if peer:
            peer_per_event = (peer["user_s"] + peer["sys_s"]) * 1e6 / peer["events"]
            versus_peer = f"{per_event / peer_per_event:.3f}× (1/{peer_per_event / per_event:.0f})"
        else:
            versus_peer = "—"
        versus_validation = f"{validate['user_s'] / row['user_s']:.2f}×" if validate and row["user_s"] > 0 else "—"
        status = "" if row["exit"] == 0 else f" (exit {row['exit']})"
        print(
            f"| {row['label']}{status} | {row['events']:,} | {per_event:,.1f} | {row['user_s']:.3f} | {row['sys_s']:.3f} | "
            f"{row['max_rss_kb'] / 1024:.0f} | {row['events'] / row['wall_s']:,.0f} | {versus_peer} | {versus_validation} | "
            f"{row['load_before']:.2f}→{row['load_after']:.2f} |"
        )


def versus(argv):
    if len(argv) != 3:
        sys.exit("usage: measure.py versus RESULTS ID BASELINE-ID")
    with open(argv[0]) as results:
        rows = [json.loads(line) for line in results if line.strip()]
    this = [row for row in rows if row["id"] == argv[1]]
    base = [row for row in rows if row["id"] == argv[2]]
    if not this or not base or len(this) != len(base):
        sys.exit(f"measure.py versus: {len(this)} runs of {argv[1]} and {len(base)} of {argv[2]}: expected as many of each, at least one")

    def per_event(row, fields):
        return sum(row[f] for f in fields) * 1e6 / row["events"]

    def name(runs):
        # "run --to s3://, this build, round 1" -> "run --to s3://, this build"
        return runs[0]["label"].rsplit(", round ", 1)[0]

    loads = [load for row in this + base for load in (row["load_before"], row["load_after"])]
    print()
    print(f"{name(this)} vs {name(base)}: {len(this)} runs each, load average {min(loads):.2f}–{max(loads):.2f}")
    for what, fields in (("CPU (user + sys)", ("user_s", "sys_s")), ("user CPU", ("user_s",))):
        a = [per_event(row, fields) for row in this]
        b = [per_event(row, fields) for row in base]
        paired = [(x - y) / y * 100 for x, y in zip(a, b)]
        print(
            f"  {what} per event: median {median(a):,.1f} µs ({min(a):,.1f}–{max(a):,.1f}) vs {median(b):,.1f} µs "
            f"({min(b):,.1f}–{max(b):,.1f}): {(median(a) - median(b)) / median(b) * 100:+.1f} %; "
            f"paired runs {median(paired):+.1f} % ({min(paired):+.1f} to {max(paired):+.1f})"
        )


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main():
    commands = {"run": run, "table": table, "versus": versus}
    if len(sys.argv) < 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
