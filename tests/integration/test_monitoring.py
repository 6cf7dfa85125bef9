"""deploy/prometheus and deploy/grafana: promtool check config and check rules, the alerts'
unit tests (promtool test rules: each alert fires on the series that should fire it, and only
then), the dashboard's queries parsed by promtool (as recording rules), and every metric the
rules and the dashboard name exported by a real corepiped (a renamed metric breaks this test,
not an operator's dashboard)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

from serverlib import Server
from test_metrics import get

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROM = os.path.join(ROOT, "deploy", "prometheus")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "corepipe-dashboard.json")
UDP_ONLY = {"corepipe_udp_link_up"}  # exported only with dataplane.ports
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "and", "on",
                "without", "up", "le", "bool", "or", "unless", "ignoring"}


def promtool(*args, cwd=None):
    exe = shutil.which("promtool")
    assert exe, "promtool missing: scripts/deps.sh test installs it (package prometheus)"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def dashboard_exprs():
    with open(DASHBOARD) as f:
        d = json.load(f)
    return d, [t["expr"] for p in d["panels"] for t in p["targets"]]


def metric_names(expr):
    """Metric names in a PromQL expression (identifiers before { or [ or a space/paren that are
    not functions, keywords or label names)."""
    expr = re.sub(r'"[^"]*"', '""', expr)          # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)        # matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n not in PROMQL_WORDS and not n.startswith("__")
            and not re.fullmatch(r"\d.*|e\d+", n)}


class MonitoringTest(unittest.TestCase):
    def test_promtool_config_rules_and_rule_tests(self):
        r = promtool("check", "config", os.path.join(PROM, "prometheus.yml"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = promtool("check", "rules", os.path.join(PROM, "corepipe-rules.yml"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = promtool("test", "rules", "corepipe-rules.test.yml",
                     cwd=os.path.join(ROOT, "tests", "prometheus"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_kubernetes_scrape_job(self):
        # Debian's promtool lacks kubernetes_sd_configs: the structure and regexes instead.
        with open(os.path.join(PROM, "prometheus-kubernetes.yml")) as f:
            job = yaml.safe_load(f)["scrape_configs"][0]
        self.assertEqual(job["kubernetes_sd_configs"], [{"role": "pod"}])
        for rl in job["relabel_configs"]:
            re.compile(rl.get("regex", "(.*)"))
        keep = [rl for rl in job["relabel_configs"] if rl.get("action") == "keep"]
        self.assertTrue(re.fullmatch(keep[0]["regex"], "corepipe"))
        self.assertTrue(re.fullmatch(keep[0]["regex"], "corepipe-nic"))
        addr = next(rl for rl in job["relabel_configs"]
                    if rl.get("target_label") == "__address__")
        self.assertEqual(re.sub("^" + addr["regex"] + "$", r"\1:\2", "10.0.0.7:8080;29051"),
                         "10.0.0.7:29051")

    def test_dashboard_queries_parse(self):
        d, exprs = dashboard_exprs()
        self.assertEqual(len({p["id"] for p in d["panels"]}), len(d["panels"]))
        self.assertGreaterEqual(len(exprs), 16)
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:q{i}", "expr": e.replace("$__rate_interval", "5m")
             .replace("$instance", ".*")} for i, e in enumerate(exprs)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump(rules, f)
            f.flush()
            r = promtool("check", "rules", f.name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_every_metric_named_is_exported(self):
        with open(os.path.join(PROM, "corepipe-rules.yml")) as f:
            rules = yaml.safe_load(f)
        recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
        used = set()
        for g in rules["groups"]:
            for r in g["rules"]:
                used |= metric_names(r["expr"])
        for e in dashboard_exprs()[1]:
            used |= metric_names(e)
        used -= recorded
        srv = Server("pipelines:\n  p:\n    - type: passthrough\n").start()
        try:
            _, _, body = get(srv.metrics_port, "/metrics")
        finally:
            self.assertEqual(srv.stop(), 0)
        exported = set()
        for line in body.splitlines():
            if line.startswith("# TYPE "):
                name, kind = line.split()[2:4]
                exported.add(name)
                if kind == "histogram":
                    exported |= {name + "_bucket", name + "_sum", name + "_count"}
        self.assertIn("grpc_server_handled_total", used)  # the parser finds names
        self.assertEqual(used - exported - UDP_ONLY, set())


if __name__ == "__main__":
    unittest.main()
