"""perf/flamegraph.sh and perf/perfstat.sh in one command each, offline: --bench starts a
corepiped of their own with corepipe-bench load (the gRPC path, and the UDP path over a net_tap
port moved into a network namespace the scenario makes: root only), records it, renders it with
the renderer installed in the tree (perf/flamegraph/node_modules, npm ci by scripts/deps.sh),
and stops everything it started. Short recordings (1 s)."""
import os
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

from serverlib import COREPIPED

# scripts/run-integration.py runs this module with nothing beside it:
RUN_ALONE = ("perf samples every CPU, and perf/scenario.sh's UDP scenario uses a fixed "
             "subnet (10.77.251.0/24)")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(COREPIPED))


def perf_usable():
    if shutil.which("perf") is None:
        return False
    p = subprocess.run(["perf", "stat", "-e", "task-clock", "true"], capture_output=True,
                       timeout=30)
    return p.returncode == 0


@unittest.skipUnless(perf_usable(), "perf (linux-perf) missing or not permitted here")
class PerfToolsTest(unittest.TestCase):
    def run_tool(self, *args):
        p = subprocess.run([*args, "--build", BUILD], capture_output=True, text=True, timeout=180,
                           cwd=ROOT, env=dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin"))
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
        return p.stdout + p.stderr

    def test_flamegraph_unary_offline(self):
        out_dir = tempfile.mkdtemp(prefix="corepipe-fg-")
        svg = os.path.join(out_dir, "fg.svg")
        try:
            log = self.run_tool("perf/flamegraph.sh", "--bench", "unary", "--duration", "1",
                                "--out", svg)
            self.assertIn("corepipe-bench", log)  # the load generator that exists now
            self.assertIn("Result:\tall", log)
            root = ET.parse(svg).getroot()  # well-formed
            text = ET.tostring(root, encoding="unicode")
            # Small unary calls run inline on the front end: the worker lcore may take no
            # sample at all, so only the front end's frame is sure to be there.
            self.assertIn("frontend: main thread", text)
        finally:
            shutil.rmtree(out_dir)

    @unittest.skipUnless(os.geteuid() == 0, "the udp scenario needs root (tap, netns)")
    def test_perfstat_udp(self):
        log = self.run_tool("perf/perfstat.sh", "--bench", "udp", "--duration", "1")
        self.assertIn("--proto udp", log)
        self.assertRegex(log, r"perf stat: pid \d+ \(corepiped\), 1s, [1-9]\d* requests")
        self.assertIn("task-clock", log)
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertNotIn(f"cpsc", netns)  # the scenario removed its namespace

    def test_unknown_scenario_refused(self):
        p = subprocess.run(["perf/flamegraph.sh", "--bench", "nope", "--duration", "1"],
                           capture_output=True, text=True, timeout=30, cwd=ROOT)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown scenario 'nope' (unary, speech, stream, udp)", p.stderr)


if __name__ == "__main__":
    unittest.main()
