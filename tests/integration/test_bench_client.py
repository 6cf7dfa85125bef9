"""perf/corepipe-bench against a real corepiped: statuses are counted by code, outputs checked,
streams timed per message, inline pipelines sent, JSON complete, and the open loop free of
coordinated omission (latency counted from the scheduled send time). Runs are short (well under
a second each) and bounded by a timeout; the binary is build/<variant>/perf/corepipe-bench,
found next to $COREPIPED.
"""
import json
import os
import subprocess
import unittest

from serverlib import COREPIPED, Server

BENCH = os.path.join(os.path.dirname(os.path.abspath(COREPIPED)), "perf", "corepipe-bench")
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
        # 5 ms per call on one connection with one call in flight: at most ~200 calls/s. At
        # 400 calls/s the schedule falls behind, and since latency counts from each call's
        # scheduled time it grows with the queue; a closed loop would report ~5 ms.
        # The property, not a number: the open loop's worst latency carries the queue (about
        # 50x one call's time here), the closed loop's median is one call.
        d = self.run_bench("-c", "1", "--rps", "400", "-z", "0.5", "--pipeline", "slow")
        closed = self.run_bench("-c", "1", "-z", "0.3", "--pipeline", "slow")
        self.assertGreater(d["latency_us"]["max"], 4 * closed["latency_us"]["p50"],
                           (d["latency_us"], closed["latency_us"]))

    def test_usage_errors(self):
        p = subprocess.run([BENCH, "--bogus"], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([BENCH, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for flag in ("--rps", "--load-schedule", "--stream-frames", "--proto", "--cacert",
                     "--check-output", "--inline-json", "--wav"):
            self.assertIn(flag, p.stdout)


if __name__ == "__main__":
    unittest.main()
