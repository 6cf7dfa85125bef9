#!/usr/bin/python3
"""Report of perf/frontend_bench.sh: medians over the interleaved rounds and the ratios the
front-end issue sets targets for; writes perf/results/<timestamp>-frontend.json and .md and
prints the markdown.

usage: frontend_report.py RUNS_DIR ROUNDS SECONDS LOADAVG CLK_TCK"""
import datetime
import json
import os
import statistics
import sys

runs, rounds, secs, load, clk = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], \
    int(sys.argv[5])


def load_json(path):
    with open(path) as f:
        return json.load(f)


def values(layout, srv, scen, get):
    out = []
    for r in range(1, rounds + 1):
        p = os.path.join(runs, str(r), layout, srv, scen + ".json")
        if os.path.exists(p):
            v = get(load_json(p), p)
            if v is not None:
                out.append(v)
    return out


def med(layout, srv, scen, *keys):
    def get(d, _p):
        for k in keys:
            d = d[k]
        return float(d)
    v = values(layout, srv, scen, get)
    return statistics.median(v) if v else None


def cpu_us_per_req(layout, srv, scen):
    """Server CPU (user + system) per request, µs, from /proc ticks around an h2load run."""
    def get(d, _p):
        return d["ticks"] / clk * 1e6 / d["n"]
    v = values(layout, srv, scen, get)
    return statistics.median(v) if v else None


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


rows = []


def row(section, label, a, b, target, better):
    r = ratio(a, b)
    ok = None
    if r is not None and target is not None:
        ok = r <= target if better == "lower" else r >= target
    rows.append({"section": section, "label": label, "corepipe": a, "other": b, "ratio": r,
                 "target": target, "better": better, "met": ok})


P, D = "pinned", "default"
for lay, sect in ((P, "one lcore (server and reference on CPU 0, generator on CPU 1)"),
                  (D, "default map (nothing pinned)")):
    row(sect, "c=1 mean latency (µs)", med(lay, "corepipe", "c1", "latency_us", "mean"),
        med(lay, "reference", "c1", "latency_us", "mean"), 1.0 if lay == P else 1.1, "lower")
    row(sect, "c=1 p99 latency (µs)", med(lay, "corepipe", "c1", "latency_us", "p99"),
        med(lay, "reference", "c1", "latency_us", "p99"), 1.0 if lay == P else None, "lower")
    row(sect, "16 outstanding (h2load -c1 -m16) req/s", med(lay, "corepipe", "h2_16", "rps"),
        med(lay, "reference", "h2_16", "rps"), 1.0 if lay == P else None, "higher")
    row(sect, "256 outstanding (h2load -c4 -m64) req/s", med(lay, "corepipe", "h2_256", "rps"),
        med(lay, "reference", "h2_256", "rps"), 1.0 if lay == P else None, "higher")
    for scen, n in (("h2_16", "16"), ("h2_256", "256")):
        row(sect, f"server CPU per request at {n} outstanding (µs)",
            cpu_us_per_req(lay, "corepipe", scen), cpu_us_per_req(lay, "reference", scen),
            1.0 if lay == P else None, "lower")
    row(sect, "call after 10 ms idle, mean (µs) / back to back", 
        med(lay, "corepipe", "idle10", "latency_us", "mean"),
        med(lay, "corepipe", "c1", "latency_us", "mean"), 1.2 if lay == D else None, "lower")
    row(sect, "reference: call after 10 ms idle / back to back",
        med(lay, "reference", "idle10", "latency_us", "mean"),
        med(lay, "reference", "c1", "latency_us", "mean"), None, "lower")
row("default map, idle_policy spin", "call after 10 ms idle, mean (µs) / back to back",
    med(D, "corepipe-spin", "idle10", "latency_us", "mean"),
    med(D, "corepipe-spin", "c1", "latency_us", "mean"), 1.2, "lower")
row("default map, idle_policy spin", "c=1 mean latency (µs), spin / reference",
    med(D, "corepipe-spin", "c1", "latency_us", "mean"),
    med(D, "reference", "c1", "latency_us", "mean"), 1.1, "lower")
row("default map vs one lcore (corepipe)", "req/s at 16 outstanding, default / one lcore",
    med(D, "corepipe", "h2_16", "rps"), med(P, "corepipe", "h2_16", "rps"), 1.0, "higher")
row("default map vs one lcore (corepipe)", "req/s at 256 outstanding, default / one lcore",
    med(D, "corepipe", "h2_256", "rps"), med(P, "corepipe", "h2_256", "rps"), 1.0, "higher")
for lay in (P, D):
    for srv in ("corepipe", "reference"):
        row(f"streams vs unary ({lay})", f"{srv}: 16 streams depth 1 msg/s / 16 unary calls/s",
            med(lay, srv, "stream16", "rps"), med(lay, srv, "unary16", "rps"),
            2.0 if srv == "corepipe" else None, "higher")
for lay in (P, D):
    share = {}
    for srv in ("corepipe", "reference"):
        best = max((med(lay, srv, f"conn{n}", "rps") or 0) for n in (1, 10, 100))
        share[srv] = ratio(med(lay, srv, "conn1000", "rps"), best)
        row(f"1 -> 1000 connections ({lay})", f"{srv}: req/s at 1000 / best of 1, 10, 100",
            med(lay, srv, "conn1000", "rps"), best, 0.9 if srv == "corepipe" else None,
            "higher")
    row(f"1 -> 1000 connections ({lay})", "corepipe's share / the reference's share",
        share["corepipe"], share["reference"], 1.0, "higher")
fes = sorted({d for r in os.listdir(runs) for d in os.listdir(os.path.join(runs, r, D))
              if d.startswith("corepipe-f")})
for f in fes:
    for scen, label in (("h2_16", "16 outstanding"), ("h2_256", "256 outstanding"),
                        ("conn100", "100 connections")):
        row("front ends (default map)", f"{f} / corepipe (1 front end): req/s at {label}",
            med(D, f, scen, "rps"), med(D, "corepipe", scen, "rps"), None, "higher")

raw = {}
for r in sorted(os.listdir(runs)):
    for lay in sorted(os.listdir(os.path.join(runs, r))):
        for srv in sorted(os.listdir(os.path.join(runs, r, lay))):
            d = os.path.join(runs, r, lay, srv)
            ent = raw.setdefault(f"{lay}/{srv}", {}).setdefault(r, {})
            for fn in sorted(os.listdir(d)):
                if fn.endswith(".json"):
                    j = load_json(os.path.join(d, fn))
                    if "latency_us" in j:
                        j = {k: j[k] for k in ("rps", "count", "latency_us", "client_cpu_pct")
                             if k in j}
                    ent[fn[:-5]] = j
                elif fn == "roles":
                    ent["roles"] = open(os.path.join(d, fn)).read().strip()

stamp = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")


def fmt(v):
    if v is None:
        return "n/a"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


md = [f"### Front end side by side ({stamp}, `perf/frontend_bench.sh`, {rounds} rounds)", "",
      f"Load average at the start: {load}. Execute(passthrough, 64 B); the reference is "
      "perf/ref/ref_server.cc (C++ async, one completion queue, one thread, same libgrpc). "
      "Medians over the interleaved rounds.", ""]
section = None
for r in rows:
    if r["section"] != section:
        section = r["section"]
        md += ["", f"**{section}**", "", "| | corepipe | compared with | ratio | target | met |",
               "|---|---|---|---|---|---|"]
    tgt = "" if r["target"] is None else ("≤ " if r["better"] == "lower" else "≥ ") + \
        f"{r['target']:.1f}"
    met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
    md.append(f"| {r['label']} | {fmt(r['corepipe'])} | {fmt(r['other'])} | "
              f"{'n/a' if r['ratio'] is None else '%.2f' % r['ratio']} | {tgt} | {met} |")
text = "\n".join(md) + "\n"
os.makedirs("perf/results", exist_ok=True)
with open(f"perf/results/{stamp}-frontend.json", "w") as f:
    json.dump({"stamp": stamp, "load_average_at_start": load, "rounds": rounds,
               "seconds": secs, "rows": rows, "runs": raw}, f, indent=1)
with open(f"perf/results/{stamp}-frontend.md", "w") as f:
    f.write(text)
print(text)
print(f"written: perf/results/{stamp}-frontend.json, perf/results/{stamp}-frontend.md")
