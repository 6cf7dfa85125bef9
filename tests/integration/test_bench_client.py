"""perf/corepipe-bench against a real corepiped: statuses are counted by code, outputs checked,
streams timed per message, inline pipelines sent, JSON complete, and the open loop free of
coordinated omission (latency counted from the scheduled send time). Runs are short (well under
a second each) and bounded by a timeout; the binary is build/<variant>/perf/corepipe-bench,
found next to $COREPIPED. The report formats (ghz-style: -o, --format text|json|csv|html):
the error distribution by code and message in each, a correct summary when every call fails,
the CSV parsed, the HTML opened in headless Chromium (Debian's) with its charts found in the DOM
and a screenshot kept in build/test-output/bench/.
"""
import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from serverlib import COREPIPED, Server

BENCH = os.path.join(os.path.dirname(os.path.abspath(COREPIPED)), "perf", "corepipe-bench")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "build", "test-output", "bench")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
CONFIG = """
pipelines:
  passthrough:
    - type: passthrough
  slow:
    - type: test_delay
      params: { us: "5000" }
"""


class BenchClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(CONFIG).start()
        cls.target = f"127.0.0.1:{cls.srv.port}"

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def run_bench(self, *args, expect_rc=0):
        p = subprocess.run([BENCH, self.target, "--format", "json", "--warmup", "0.1", *args],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, expect_rc, p.stderr + p.stdout)
        return json.loads(p.stdout)

    def test_unary_counts_checks_and_reports(self):
        d = self.run_bench("-c", "4", "-n", "300", "-z", "30", "--check-output")
        self.assertEqual(d["count"], 300)
        self.assertEqual(d["status"], {"OK": 300})
        self.assertEqual(d["checked_ok"], 300)
        self.assertEqual(d["bad_output"], 0)
        lat = d["latency_us"]
        self.assertLessEqual(lat["min"], lat["p50"])
        self.assertLessEqual(lat["p50"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["max"])
        self.assertEqual(sum(c for _, c in d["buckets"]), 300)
        self.assertIn("-n 300", d["command"])
        self.assertGreater(d["client_cpu_s"], 0)

    def test_errors_counted_by_code_and_exit_status(self):
        d = self.run_bench("-c", "2", "-n", "50", "-z", "30", "--pipeline", "nope", expect_rc=1)
        self.assertEqual(d["status"], {"NOT_FOUND": 50})
        self.assertEqual(d["errors"], 50)
        self.run_bench("-c", "2", "-n", "20", "-z", "30", "--pipeline", "nope",
                       "--allow-errors")

    def test_inline_pipelines_and_audio(self):
        d = self.run_bench("-n", "50", "-z", "30", "--node", "gain:db=0", "--node", "passthrough",
                           "--audio-format", "f32le", "--audio-rate", "16000")
        self.assertEqual(d["status"], {"OK": 50})
        d = self.run_bench("-n", "50", "-z", "30", "--check-output",
                           "--inline-json", '{"nodes": [{"type": "passthrough"}]}')
        self.assertEqual(d["checked_ok"], 50)

    def test_stream_messages_timed_and_checked(self):
        d = self.run_bench("--stream", "-c", "2", "--depth", "4", "--stream-frames", "100",
                           "-n", "500", "-z", "30", "--check-output")
        self.assertEqual(d["mode"], "stream")
        self.assertEqual(d["count"], 500)
        self.assertEqual(d["checked_ok"], 500)
        self.assertEqual(d["bad_seq"], 0)
        self.assertEqual(list(d["status"]), ["OK"])

    def test_open_loop_counts_queueing(self):
        # At least 5 ms per call (the server's test_delay), one connection, one call in
        # flight: the k-th call (from 0) is scheduled at k x 2.5 ms (400 calls/s) and cannot
        # end before (k + 1) x 5 ms, so, counted from its scheduled time as an open loop must,
        # its latency is at least k x 2.5 ms: with n calls answered the worst is at least
        # (n - 1) x 2.5 ms, however slow the machine (slowness only adds). A closed loop,
        # timing from the send, would report about 5 ms for every call.
        d = self.run_bench("-c", "1", "--rps", "400", "-z", "0.5", "--pipeline", "slow")
        n = d["ok"]
        # n may be 1 under ASan (a first call of 0.67 s): the schedule's backlog shows the
        # queue then; either way every call scheduled is answered or counted as backlog.
        self.assertGreaterEqual(n, 1, d)
        self.assertGreaterEqual(n + d["backlog_at_end"], 100, d)
        self.assertGreaterEqual(d["latency_us"]["max"], (n - 1) * 2500, (n, d["latency_us"]))
        closed = self.run_bench("-c", "1", "-z", "0.3", "--pipeline", "slow")
        self.assertGreaterEqual(closed["latency_us"]["min"], 5000, closed["latency_us"])

    def run_fmt(self, fmt, *args, expect_rc=0):
        p = subprocess.run([BENCH, self.target, "--format", fmt, "--warmup", "0", *args],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, expect_rc, p.stderr + p.stdout)
        return p.stdout

    def test_all_calls_failing_is_summarised_as_such(self):
        # The old report said "[OK] 1 streams" when all 5 calls failed.
        d = json.loads(self.run_fmt("json", "--stream", "-n", "5", "--pipeline", "nope",
                                    expect_rc=1))
        self.assertEqual(d["status"], {"NOT_FOUND": 5})
        self.assertEqual((d["ok"], d["errors"], d["calls"], d["count"]), (0, 5, 5, 0))
        self.assertEqual(d["verdict"], "all 5 streams failed")
        (e,) = d["error_distribution"]
        self.assertEqual((e["code"], e["count"]), ("NOT_FOUND", 5))
        self.assertIn("'nope' not found", e["message"])
        text = self.run_fmt("text", "--stream", "-n", "5", "--pipeline", "nope", expect_rc=1)
        self.assertIn("Result:\tall 5 streams failed", text)
        self.assertIn("Streams:\t0 OK, 5 failed", text)
        self.assertNotIn("[OK]", text)
        self.assertIn("Latency:\tnone measured", text)
        self.assertRegex(text, r"Error distribution:\n  \[5\]\tNOT_FOUND: open: pipeline 'nope'")
        d = json.loads(self.run_fmt("json", "-n", "5", "--pipeline", "nope", expect_rc=1))
        self.assertEqual(d["verdict"], "all 5 calls failed")
        self.assertEqual(d["error_distribution"][0]["count"], 5)

    def test_error_distribution_groups_by_code_and_message(self):
        # Every failure counted once under its code and message (here: a bad node param).
        d = json.loads(self.run_fmt("json", "-n", "20", "-c", "2", "--node", "gain:db=loud",
                                    expect_rc=1))
        self.assertEqual(sum(e["count"] for e in d["error_distribution"]), 20)
        self.assertEqual({e["code"] for e in d["error_distribution"]}, {"INVALID_ARGUMENT"})

    def test_csv_parses(self):
        path = os.path.join(tempfile.mkdtemp(prefix="corepipe-bench-"), "r.csv")
        self.run_fmt("csv", "-n", "200", "-c", "2", "-o", path)
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        shutil.rmtree(os.path.dirname(path))
        self.assertTrue(rows)
        by = {(r["section"], r["key"]): r["value"] for r in rows}
        self.assertEqual(by[("summary", "count")], "200")
        self.assertEqual(by[("status", "OK")], "200")
        self.assertEqual(by[("summary", "verdict")], "all 200 calls OK")
        self.assertIn("corepipe-bench", by[("summary", "command")])
        self.assertLessEqual(float(by[("latency_us", "p50")]), float(by[("latency_us", "p99")]))
        self.assertEqual(sum(int(r["value"]) for r in rows if r["section"] == "histogram_us"), 200)
        # With errors: error rows by code and message, and the counts add up.
        rows = list(csv.DictReader(io.StringIO(self.run_fmt(
            "csv", "-n", "30", "--pipeline", "nope", expect_rc=1))))
        errs = [r for r in rows if r["section"] == "error"]
        self.assertEqual(len(errs), 1)
        self.assertTrue(errs[0]["key"].startswith("NOT_FOUND: pipeline 'nope'"))
        self.assertEqual(int(errs[0]["value"]), 30)

    def test_html_report_in_headless_chromium(self):
        chromium = shutil.which("chromium")
        self.assertIsNotNone(chromium, "chromium is not installed (make deps installs it)")
        os.makedirs(OUT_DIR, exist_ok=True)
        page = os.path.join(OUT_DIR, "report.html")
        shot = os.path.join(OUT_DIR, "report.png")
        for f in (page, shot):
            if os.path.exists(f):
                os.unlink(f)
        self.run_fmt("html", "-n", "300", "-c", "2", "-o", page)
        with open(page) as f:
            html = f.read()
        self.assertNotRegex(html, r"(src|href)=\"?(https?:)?//")  # nothing fetched
        profile = tempfile.mkdtemp(prefix="corepipe-chromium-")
        try:
            p = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                "--dump-dom", "file://" + page], capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            dom = p.stdout
            p = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                "--window-size=1200,1600", f"--screenshot={shot}",
                                "file://" + page], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        # The script ran and drew both charts as SVG in the DOM.
        self.assertIn('data-charts-drawn="yes"', dom)
        self.assertIn('id="chart-histogram"', dom)
        self.assertIn('id="chart-cdf"', dom)
        self.assertEqual(dom.count('class="bar"'), 11)
        self.assertEqual(dom.count('class="cdf"'), 1)
        self.assertIn("all 300 calls OK", dom)
        self.assertGreater(os.path.getsize(shot), 10000)
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        # A failing run's page: the error table, and no chart but a sentence saying why.
        bad = os.path.join(OUT_DIR, "report-failed.html")
        self.run_fmt("html", "--stream", "-n", "3", "--pipeline", "nope", "-o", bad, expect_rc=1)
        with open(bad) as f:
            html = f.read()
        self.assertIn("all 3 streams failed", html)
        self.assertIn("<table id=\"errors\">", html)
        self.assertIn("open: pipeline &#39;nope&#39;".replace("&#39;", "'"), html)

    def test_usage_errors(self):
        p = subprocess.run([BENCH, "--bogus"], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([BENCH, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for flag in ("--rps", "--pause-ms", "--load-schedule", "--stream-frames", "--proto", "--cacert",
                     "--check-output", "--inline-json", "--wav", "--output", "csv|html"):
            self.assertIn(flag, p.stdout)


if __name__ == "__main__":
    unittest.main()
