#!/usr/bin/python3
"""Report of perf/sidebyside.sh: medians over the interleaved rounds, ratios corepipe / reference,
perf/results/<ts>.json (every run's full output too), perf/results/<ts>.md (the tables) and the
gnuplot plots perf/results/<ts>-{latency,throughput,stream-cdf,connections}.{svg,png}.

usage: sbs_report.py RUNS_DIR BUILD_DIR ROUNDS SECONDS MICRO_DIR|'' CLK_TCK
       sbs_report.py --line FILE.json    (one corepipe-bench result as one line)
"""
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

if sys.argv[1] == "--line":
    d = json.load(open(sys.argv[2]))
    q = d["latency_us"]
    print(f"{d['rps']:9.0f}/s  p50 {q['p50']:8.1f} us  p99 {q['p99']:8.1f} us  "
          f"client CPU {d['client_cpu_pct']:.0f}%")
    sys.exit(0)

runs_dir, build, rounds, secs, micro_dir, hz = sys.argv[1:7]
hz = float(hz)
SERVERS = ("corepipe", "reference")
CONC = (1, 4, 16, 64, 256)
CONNS = (1, 10, 100, 1000)

# runs[srv][name] = [json of round 1, round 2, ...]
runs = {s: {} for s in SERVERS}
for path in sorted(glob.glob(os.path.join(runs_dir, "*", "*", "*.json"))):
    r, srv, name = path.split(os.sep)[-3], path.split(os.sep)[-2], os.path.basename(path)[:-5]
    d = json.load(open(path))
    ticks = path[:-5] + ".ticks"
    if os.path.exists(ticks):
        d["server_ticks"] = int(open(ticks).read())
    d["round"] = int(r)
    runs[srv].setdefault(name, []).append(d)


def med(srv, name, key, sub=None):
    vals = []
    for d in runs[srv].get(name, []):
        v = d[key] if sub is None else d[key][sub]
        vals.append(float(v))
    return statistics.median(vals) if vals else None


def rng(srv, name, key, sub=None):
    vals = [float(d[key] if sub is None else d[key][sub]) for d in runs[srv].get(name, [])]
    return (min(vals), max(vals)) if vals else None


def cpu_per_1000(srv, name):
    """Server CPU seconds per 1000 requests of an h2load run (exact n, no warm-up)."""
    vals = [d["ticks"] / hz / d["n"] * 1000 for d in runs[srv].get(name, [])]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}{unit}"
    if abs(v) >= 100:
        return f"{v:.0f}{unit}"
    if abs(v) >= 10:
        return f"{v:.1f}{unit}"
    return f"{v:.3g}{unit}"


def ratio(a, b):
    return a / b if a is not None and b else None


# ---- medians and ratios -----------------------------------------------------------------------
rows = []  # (label, key, corepipe, reference, better)


def row(label, key, a, b, better):
    rows.append({"label": label, "key": key, "corepipe": a, "reference": b,
                 "ratio": ratio(a, b), "better": better})


row("ping-pong c=1 p50 (µs)", "c1_p50", med("corepipe", "c1", "latency_us", "p50"),
    med("reference", "c1", "latency_us", "p50"), "lower")
row("ping-pong c=1 p99 (µs)", "c1_p99", med("corepipe", "c1", "latency_us", "p99"),
    med("reference", "c1", "latency_us", "p99"), "lower")
for c in (16, 256):
    row(f"unary c={c} req/s (corepipe-bench)", f"c{c}_rps", med("corepipe", f"c{c}", "rps"),
        med("reference", f"c{c}", "rps"), "higher")
for name, label in (("h2_c16", "c=16 (h2load -c 1 -m 16)"), ("h2_c256", "c=256 (h2load -c 4 -m 64)")):
    row(f"unary {label} req/s", f"{name}_rps", med("corepipe", name, "rps"),
        med("reference", name, "rps"), "higher")
for n in (1, 1000):
    row(f"{n} connection{'s' if n > 1 else ''}, 1 call each: req/s", f"conn{n}_rps",
        med("corepipe", f"conn{n}", "rps"), med("reference", f"conn{n}", "rps"), "higher")
# Degradation: 1000 connections against the best of 1/10/100 (one connection alone is
# latency-bound, so against it alone more connections look like a gain).
best = {s: max([v for v in (med(s, f"conn{n}", "rps") for n in CONNS[:-1]) if v] or [0])
        for s in SERVERS}
d1000 = {s: ratio(med(s, "conn1000", "rps"), best[s]) for s in SERVERS}
row("1000 connections / best of 1, 10, 100: req/s", "conn_degradation", d1000["corepipe"],
    d1000["reference"], "higher")
for name, label in (("h2_c16", "c=16"), ("h2_c256", "c=256")):
    row(f"server CPU s per 1000 requests ({label}, h2load)", f"cpu_per_1000_{name}",
        cpu_per_1000("corepipe", name), cpu_per_1000("reference", name), "lower")

stream = {}
for s in SERVERS:
    for c in (1, 16):
        st, un = med(s, f"stream_c{c}", "rps"), med(s, f"c{c}", "rps")
        stream[s + f"_c{c}"] = {"stream_msgs_per_s": st, "unary_calls_per_s": un,
                                "stream_over_unary": ratio(st, un)}
for c in (1, 16):
    row(f"stream msgs/s, {c} stream{'s' if c > 1 else ''} depth 1", f"stream_c{c}_rps",
        med("corepipe", f"stream_c{c}", "rps"), med("reference", f"stream_c{c}", "rps"),
        "higher")
row("stream msgs/s / unary calls/s, 16 outstanding", "stream_over_unary_c16",
    stream["corepipe_c16"]["stream_over_unary"], stream["reference_c16"]["stream_over_unary"],
    "higher")

micro = {}
if micro_dir and os.path.isdir(micro_dir):
    for p in sorted(glob.glob(os.path.join(micro_dir, "*.txt"))):
        micro[os.path.basename(p)[:-4]] = open(p, errors="replace").read()

ts = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
os.makedirs("perf/results", exist_ok=True)
base = f"perf/results/{ts}"
cmd = f"perf/sidebyside.sh {build} {rounds} {secs}"
result = {
    "time": ts, "command": cmd, "make": "make bench", "cpus": os.cpu_count(),
    "kernel": platform.release(), "rounds": int(rounds), "seconds_per_run": float(secs),
    "ratios_corepipe_over_reference": rows, "streaming": stream,
    "concurrency": {s: {c: {k: med(s, f"c{c}", "latency_us", k) for k in
                            ("p50", "p90", "p99", "p99_9")} | {
        "rps": med(s, f"c{c}", "rps"), "client_cpu_pct": med(s, f"c{c}", "client_cpu_pct")}
        for c in CONC} for s in SERVERS},
    "connections": {s: {n: {"rps": med(s, f"conn{n}", "rps"),
                            "p50": med(s, f"conn{n}", "latency_us", "p50"),
                            "p99": med(s, f"conn{n}", "latency_us", "p99"),
                            "client_cpu_pct": med(s, f"conn{n}", "client_cpu_pct")}
                        for n in CONNS} for s in SERVERS},
    "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
    "micro": micro, "runs": runs,
}

# ---- plots ------------------------------------------------------------------------------------
tmp = tempfile.mkdtemp(prefix="corepipe-plot.")
for s in SERVERS:
    with open(f"{tmp}/{s}.conc", "w") as f:
        for c in CONC:
            q = result["concurrency"][s][c]
            if q["rps"] is not None:
                f.write(f"{c} {q['p50']} {q['p90']} {q['p99']} {q['p99_9']} {q['rps']}\n")
    with open(f"{tmp}/{s}.conn", "w") as f:
        for n in CONNS:
            q = result["connections"][s][n]
            if q["rps"] is not None:
                f.write(f"{n} {q['rps']} {q['p50']} {q['p99']}\n")


def cdf(srv, name, path):
    """Buckets of all rounds pooled, as (latency µs, cumulative fraction)."""
    acc = {}
    for d in runs[srv].get(name, []):
        for v, c in d.get("buckets", []):
            acc[v] = acc.get(v, 0) + c
    total = sum(acc.values())
    seen, last = 0, -1.0
    keys = sorted(acc)
    with open(path, "w") as f:
        for i, v in enumerate(keys):
            seen += acc[v]
            # Thin the curve to steps of 0.2% (and the tail ends): a small SVG, same shape.
            if seen / total - last >= 0.002 or i == len(keys) - 1 or seen / total > 0.99:
                f.write(f"{v} {seen / total}\n")
                last = seen / total
    return total > 0


curves = [("corepipe", "stream_c1", "corepipe, 1 stream"),
          ("corepipe", "stream_c16", "corepipe, 16 streams"),
          ("reference", "stream_c1", "reference, 1 stream"),
          ("reference", "stream_c16", "reference, 16 streams"),
          ("corepipe", "c1", "corepipe unary c=1"), ("corepipe", "c16", "corepipe unary c=16")]
colours = ("#1f77b4", "#17becf", "#2ca02c", "#98df8a", "#d62728", "#ff9896")
dashes = (1, 1, 1, 1, 2, 2)
cdf_plots = []
for i, (s, n, title) in enumerate(curves):
    if cdf(s, n, f"{tmp}/cdf{i}"):
        cdf_plots.append(f"'{tmp}/cdf{i}' using 1:2 with lines lw 2 lc rgb '{colours[i]}' "
                         f"dt {dashes[i]} title '{title}'")

sub = f"{rounds} rounds, median; Execute(passthrough, 64 B); 2 vCPUs shared by client and server"
plots = {
    "latency": f"""
set title "Latency vs concurrency (corepipe-bench, closed loop)\\n{{/*0.8 {sub}}}"
set xlabel "calls outstanding (-c)"; set ylabel "latency (µs)"
set logscale xy; set xtics (1,4,16,64,256); set key top left
plot '{tmp}/corepipe.conc' u 1:2 w lp lw 2 lc 1 pt 7 t 'corepipe p50', \\
     '{tmp}/corepipe.conc' u 1:4 w lp lw 2 lc 1 dt 2 pt 7 t 'corepipe p99', \\
     '{tmp}/reference.conc' u 1:2 w lp lw 2 lc 2 pt 5 t 'C++ async ref p50', \\
     '{tmp}/reference.conc' u 1:4 w lp lw 2 lc 2 dt 2 pt 5 t 'C++ async ref p99'
""",
    "throughput": f"""
set title "Throughput vs concurrency (corepipe-bench, closed loop)\\n{{/*0.8 {sub}}}"
set xlabel "calls outstanding (-c)"; set ylabel "requests/s"
set logscale x; set xtics (1,4,16,64,256); set yrange [0:*]; set key bottom right
plot '{tmp}/corepipe.conc' u 1:6 w lp lw 2 lc 1 pt 7 t 'corepipe', \\
     '{tmp}/reference.conc' u 1:6 w lp lw 2 lc 2 pt 5 t 'C++ async reference'
""",
    "connections": f"""
set title "1 to 1000 connections, one call outstanding on each\\n{{/*0.8 {sub}}}"
set xlabel "connections"; set ylabel "requests/s"; set y2label "p99 (ms)"
set logscale x; set xtics (1,10,100,1000); set yrange [0:*]; set y2range [0:*]; set y2tics
set key top left
plot '{tmp}/corepipe.conn' u 1:2 w lp lw 2 lc 1 pt 7 t 'corepipe req/s', \\
     '{tmp}/reference.conn' u 1:2 w lp lw 2 lc 2 pt 5 t 'reference req/s', \\
     '{tmp}/corepipe.conn' u 1:($4/1000) axes x1y2 w lp lw 1 lc 1 dt 2 pt 7 t 'corepipe p99', \\
     '{tmp}/reference.conn' u 1:($4/1000) axes x1y2 w lp lw 1 lc 2 dt 2 pt 5 t 'reference p99'
""",
    "stream-cdf": f"""
set title "Latency CDF: ExecuteStream messages (depth 1) vs unary calls\\n{{/*0.8 all rounds pooled; 64 B messages}}"
set xlabel "latency (µs)"; set ylabel "fraction of messages / calls"
set logscale x; set yrange [0:1]; set key bottom right; set grid
plot {", ".join(cdf_plots)}
""",
}
outputs = []
for name, body in plots.items():
    for term, ext in (('svg size 760,440 dynamic font "sans,11" background "white"', "svg"),
                      ('pngcairo size 760,440 font "sans,10"', "png")):
        out = f"{base}-{name}.{ext}"
        script = f"set terminal {term}\nset output '{out}'\nset grid\n{body}"
        r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        if r.returncode != 0:
            print(f"sidebyside: gnuplot {name}: {r.stderr}", file=sys.stderr)
        else:
            outputs.append(out)

# The latency buckets of the CDF curves, pooled over rounds, go in once; the per-run copies are
# dropped (they would make the file megabytes). One line per top-level key.
result["cdf_buckets_us"] = {}
for s, n, _ in curves:
    acc = {}
    for d in runs[s].get(n, []):
        for v, c in d.get("buckets", []):
            acc[v] = acc.get(v, 0) + c
    result["cdf_buckets_us"][f"{s}/{n}"] = sorted(acc.items())
for s in SERVERS:
    for n in runs[s]:
        for d in runs[s][n]:
            d.pop("buckets", None)

# ---- markdown ---------------------------------------------------------------------------------
md = []
md.append(f"## Side by side, {ts} (`make bench`)\n")
md.append(f"`{cmd}`: {rounds} interleaved rounds, each server started afresh per round, "
          f"{secs} s per run after 1 s of warm-up; medians (range over rounds in brackets). "
          f"{os.cpu_count()} CPUs, kernel {platform.release()}; client and server share them "
          f"(and other people's builds: load average {' / '.join(result['loadavg_at_end'])} "
          "(1/5/15 min) at the end). "
          "Execute(passthrough, 64 B); the reference is perf/ref/ref_server.cc (C++ async, one "
          "completion queue, one thread). Every corepipe-bench call's status is checked and "
          "output compared with its input; every h2load answer is a 2xx and, for corepipe, "
          "h2load's count equals the server's own count of OK answers (/metrics).\n")
md.append("| scenario | corepipe | C++ async reference | corepipe / ref | better |")
md.append("|---|---|---|---|---|")


def rr(srv, name, key, sub=None):
    x = rng(srv, name, key, sub)
    return f" [{fmt(x[0])}-{fmt(x[1])}]" if x and int(rounds) > 1 else ""


srcs = {"stream_c1_rps": ("stream_c1", "rps", None), "stream_c16_rps": ("stream_c16", "rps", None),
        "c1_p50": ("c1", "latency_us", "p50"), "c1_p99": ("c1", "latency_us", "p99"),
        "c16_rps": ("c16", "rps", None), "c256_rps": ("c256", "rps", None),
        "h2_c16_rps": ("h2_c16", "rps", None), "h2_c256_rps": ("h2_c256", "rps", None),
        "conn1_rps": ("conn1", "rps", None), "conn1000_rps": ("conn1000", "rps", None)}
for r in rows:
    src = srcs.get(r["key"])
    a = fmt(r["corepipe"]) + (rr("corepipe", *src) if src else "")
    b = fmt(r["reference"]) + (rr("reference", *src) if src else "")
    q = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
    md.append(f"| {r['label']} | {a} | {b} | {q} | {r['better']} |")
md.append("")
md.append("Streaming: messages/s of ExecuteStream (depth 1: each stream waits for the answer "
          "before its next frame) against unary calls/s with the same number outstanding.\n")
md.append("| server | outstanding | stream msgs/s | stream p50 / p99 (µs) | unary calls/s | unary p50 / p99 (µs) | stream / unary |")
md.append("|---|---|---|---|---|---|---|")
for s in SERVERS:
    for c in (1, 16):
        sn, un = f"stream_c{c}", f"c{c}"
        md.append(f"| {s} | {c} | {fmt(med(s, sn, 'rps'))} | "
                  f"{fmt(med(s, sn, 'latency_us', 'p50'))} / "
                  f"{fmt(med(s, sn, 'latency_us', 'p99'))} | "
                  f"{fmt(med(s, un, 'rps'))} | "
                  f"{fmt(med(s, un, 'latency_us', 'p50'))} / "
                  f"{fmt(med(s, un, 'latency_us', 'p99'))} | "
                  f"{fmt(stream[s + f'_c{c}']['stream_over_unary'])} |")
md.append("")
md.append("Concurrency sweep (corepipe-bench, 2 client threads from c=4, up to 4 connections); "
          "client CPU in % of one core, out of 200%.\n")
md.append("| c | corepipe req/s | p50 / p99 (µs) | client CPU | reference req/s | p50 / p99 (µs) | client CPU |")
md.append("|---|---|---|---|---|---|---|")
for c in CONC:
    a, b = result["concurrency"]["corepipe"][c], result["concurrency"]["reference"][c]
    md.append(f"| {c} | {fmt(a['rps'])} | {fmt(a['p50'])} / {fmt(a['p99'])} | "
              f"{fmt(a['client_cpu_pct'], '%')} | {fmt(b['rps'])} | {fmt(b['p50'])} / "
              f"{fmt(b['p99'])} | {fmt(b['client_cpu_pct'], '%')} |")
md.append("")
md.append("Connections: N connections, one call outstanding on each (corepipe-bench "
          "-c N --connections N); req/s per client core = req/s / client CPU, the figure that "
          "does not move when the client is the bottleneck.\n")
md.append("| N | corepipe req/s | p50 / p99 (µs) | client CPU | per client core | reference req/s | p50 / p99 (µs) | client CPU | per client core |")
md.append("|---|---|---|---|---|---|---|---|---|")


def per_core(q):
    return q["rps"] / (q["client_cpu_pct"] / 100) if q["rps"] and q["client_cpu_pct"] else None


for n in CONNS:
    a, b = result["connections"]["corepipe"][n], result["connections"]["reference"][n]
    md.append(f"| {n} | {fmt(a['rps'])} | {fmt(a['p50'])} / {fmt(a['p99'])} | "
              f"{fmt(a['client_cpu_pct'], '%')} | {fmt(per_core(a))} | {fmt(b['rps'])} | "
              f"{fmt(b['p50'])} / {fmt(b['p99'])} | {fmt(b['client_cpu_pct'], '%')} | "
              f"{fmt(per_core(b))} |")
md.append("")
failed = [f"{s} {n} round {d['round']}: {d['count']} answers, status {d.get('status')}, "
          f"{d.get('bad_output', 0)} bad outputs, {d.get('bad_seq', 0)} out of order"
          for s in SERVERS for n in sorted(runs[s]) for d in runs[s][n]
          if "latency_us" in d and (d.get("errors") or d.get("bad_output") or d.get("bad_seq")
                                    or not d.get("count"))]
result["failed_runs"] = failed
md.append("Runs with failed calls or checks (their figures are in the medians above): " +
          ("; ".join(failed) if failed else "none") + ".\n")
if outputs:
    md.append("Plots: " + ", ".join(f"`{o}`" for o in outputs if o.endswith(".svg")) + "\n")
for name, text in micro.items():
    md.append(f"### {name}\n\n```\n{text.rstrip()}\n```\n")
open(base + ".md", "w").write("\n".join(md) + "\n")
with open(base + ".json", "w") as f:
    f.write("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
                               for k, v in result.items()) + "\n}\n")

print()
print("\n".join(md))
print(f"written: {base}.json, {base}.md, " + ", ".join(outputs))
