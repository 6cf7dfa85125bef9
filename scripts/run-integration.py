#!/usr/bin/env python3
"""Run integration-test modules (tests/integration/test_*.py) as separate processes, in parallel.

    run-integration.py [-j N] [--timeout S] [--times FILE] [--logs DIR] [MODE:]MODULE ...

Each item is a module name (test_api; or test_api.Class[.test]), optionally prefixed by the lcore map it runs in
(one-lcore:test_api; CP_TEST_MODE, tests/integration/serverlib.py); no items: every module in
the default map. Every server a test starts binds port 0, so modules can run side by side.

A module that needs the machine to itself says so with a module-level string constant
RUN_ALONE = "why" (cgroups, taskset, CPU sampling, fixed device or subnet names): it runs with
nothing else running. The others run N at a time (-j, default nproc), longest first by the
durations recorded in --times at the last run (new modules first, by file size).

Each module's output goes to --logs/<mode>/<module>.log and is printed whole when the module
ends (never interleaved); then a summary: per-module time and result, the failed tests, and a
closing 'integration: N passed, N failed, N skipped' line. Exit status 1 if any module failed,
timed out or ran no test. A module that outlives --timeout is killed (its process group).
"""
import argparse
import ast
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..", "tests", "integration")
MODES = ("default", "one-lcore", "frontends2")


class Item:
    def __init__(self, mode, name):
        self.mode, self.module = mode, name  # name: a module, or module.Class[.test]
        self.path = os.path.join(TESTS, name.split(".")[0] + ".py")
        self.alone = run_alone(self.path)
        self.key = f"{mode}:{name}"
        self.rc = None
        self.secs = 0.0
        self.out = ""
        self.counts = (0, 0, 0)  # passed, failed (failures + errors), skipped
        self.failed_tests = []


def run_alone(path):
    """The module's RUN_ALONE reason, or None (read from its source, not imported)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "RUN_ALONE"
                and isinstance(node.value, ast.Constant)):
            return node.value.value
    return None


def parse_items(args):
    if not args:
        args = sorted(f[:-3] for f in os.listdir(TESTS)
                      if f.startswith("test_") and f.endswith(".py"))
    items = []
    for a in args:
        mode, _, module = a.rpartition(":")
        mode = mode or "default"
        if mode not in MODES:
            sys.exit(f"run-integration: unknown mode {mode!r} in {a!r} ({', '.join(MODES)})")
        if not os.path.exists(os.path.join(TESTS, module.split(".")[0] + ".py")):
            sys.exit(f"run-integration: no module tests/integration/{module.split('.')[0]}.py")
        items.append(Item(mode, module))
    return items


def count(out):
    """(passed, failed, skipped) and the failed test ids, from unittest's -v output."""
    ran = re.findall(r"^Ran (\d+) tests? in", out, re.M)
    ran = int(ran[-1]) if ran else 0
    tail = re.findall(r"^(?:OK|FAILED)(?: \((.*)\))?$", out, re.M)
    fields = dict.fromkeys(("failures", "errors", "skipped", "expected failures",
                            "unexpected successes"), 0)
    for part in (tail[-1] if tail else "").split(", "):
        k, _, v = part.partition("=")
        if k in fields and v.isdigit():
            fields[k] = int(v)
    failed = fields["failures"] + fields["errors"] + fields["unexpected successes"]
    skipped = fields["skipped"]
    failed_tests = re.findall(r"^(?:FAIL|ERROR): (.*)$", out, re.M)
    return (max(ran - failed - skipped, 0), failed, skipped), failed_tests


def run_one(item, args, env_base, print_lock):
    log_dir = os.path.join(args.logs, item.mode)
    os.makedirs(log_dir, exist_ok=True)
    log = os.path.join(log_dir, item.module + ".log")
    env = dict(env_base, CP_TEST_MODE=item.mode)
    t0 = time.monotonic()
    with open(log, "w+") as f:
        p = subprocess.Popen([sys.executable, "-m", "unittest", "-v", item.module], cwd=TESTS,
                             env=env, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, start_new_session=True)
        try:
            item.rc = p.wait(args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the module and every server it started
            p.wait()
            item.rc = "timeout"
        f.seek(0)
        item.out = f.read()
    item.secs = time.monotonic() - t0
    item.counts, item.failed_tests = count(item.out)
    if item.rc == "timeout":
        item.out += f"\nrun-integration: killed after {args.timeout} s\n"
    with print_lock:
        print(f"==== {item.key} ({item.secs:.0f} s){' [alone]' if item.alone else ''}")
        print(item.out, end="" if item.out.endswith("\n") else "\n", flush=True)


def ok(item):
    return item.rc == 0 and item.counts[1] == 0 and sum(item.counts) > 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("JOBS", 0))
                    or os.cpu_count() or 2)
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per module")
    ap.add_argument("--times", default=None, help="JSON file of last durations (read, updated)")
    ap.add_argument("--logs", default="integration-logs", help="directory for module logs")
    ap.add_argument("items", nargs="*")
    args = ap.parse_args()
    items = parse_items(args.items)

    times = {}
    if args.times and os.path.exists(args.times):
        with open(args.times) as f:
            times = json.load(f)
    # Longest first: recorded durations, unknown modules (by size) ahead of every known one.
    items.sort(key=lambda i: (i.key in times, -times.get(i.key, os.path.getsize(i.path))))
    alone = [i for i in items if i.alone]
    shared = [i for i in items if not i.alone]

    env = dict(os.environ)
    env.pop("CP_TEST_MODE", None)
    lock = threading.Lock()
    t0 = time.monotonic()
    print(f"run-integration: {len(items)} modules, {len(shared)} in parallel (-j {args.jobs}), "
          f"{len(alone)} alone", flush=True)
    # The modules that need the machine alone first, one by one; then the pool.
    for item in alone:
        run_one(item, args, env, lock)
    queue = list(shared)
    qlock = threading.Lock()

    def worker():
        while True:
            with qlock:
                if not queue:
                    return
                item = queue.pop(0)
            run_one(item, args, env, lock)

    threads = [threading.Thread(target=worker) for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0

    if args.times:
        times.update({i.key: round(i.secs, 1) for i in items})
        os.makedirs(os.path.dirname(os.path.abspath(args.times)), exist_ok=True)
        with open(args.times + ".tmp", "w") as f:
            json.dump(times, f, indent=1, sort_keys=True)
        os.replace(args.times + ".tmp", args.times)

    print("\n==== summary (module, seconds, passed/failed/skipped)")
    for i in sorted(items, key=lambda i: i.key):
        state = "ok  " if ok(i) else ("TIMEOUT" if i.rc == "timeout" else "FAIL")
        print(f"{state} {i.key:<36} {i.secs:6.0f} s  {i.counts[0]}/{i.counts[1]}/{i.counts[2]}"
              f"{'  alone: ' + i.alone if i.alone else ''}")
    bad = [i for i in items if not ok(i)]
    for i in bad:
        why = (f"exit {i.rc}" if i.rc != "timeout" else "timed out") + \
            ("" if sum(i.counts) else ", ran no test")
        print(f"failed: {i.key} ({why}): {', '.join(i.failed_tests) or '-'}")
    busy = sum(i.secs for i in items)
    print(f"run-integration: {wall:.0f} s wall, {busy:.0f} s of module time, -j {args.jobs}")
    passed, failed, skipped = (sum(i.counts[k] for i in items) for k in range(3))
    failed += sum(1 for i in bad if i.counts[1] == 0)  # a crash or timeout with no FAIL line
    print(f"integration: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
