"""The metrics an operator's Prometheus setup expects, against calls this test makes: every RPC
counted by service, method and code (grpc_server_handled_total: validation errors, Admin,
Health and unknown methods included), worker busy seconds, bytes per pipeline, histogram
buckets to 10 s, process_* as the official client libraries export them, build info with the
version, GetStats' per-pipeline section agreeing with /metrics, and promtool check metrics."""
import os
import shutil
import subprocess
import unittest

import grpc

import corepipe_pb2 as pb
import health_pb2 as hpb
from serverlib import RPC_TIMEOUT_S as T, Server
from test_metrics import get, scrape, value

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")

CONFIG = """
pipelines:
  pass:
    - type: passthrough
  crc:
    - type: crc32c
"""


def handled(m, service, method, code):
    return value(m, "grpc_server_handled_total", grpc_service=service, grpc_method=method,
                 grpc_code=code, grpc_type="bidi_stream" if method == "ExecuteStream"
                 else "unary")


class MetricsConventionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0, cls.srv.log()

    def test_every_rpc_counted_by_service_method_and_code(self):
        before = scrape(self.srv)
        for _ in range(7):
            self.srv.stub.execute(pb.ExecuteRequest(name="pass", input=pb.Payload(data=b"x")),
                                  timeout=T)
        for _ in range(5):  # validation error: no payload
            with self.assertRaises(grpc.RpcError) as cm:
                self.srv.stub.execute(pb.ExecuteRequest(name="pass"), timeout=T)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        for _ in range(3):
            with self.assertRaises(grpc.RpcError):
                self.srv.stub.execute(pb.ExecuteRequest(name="nope",
                                                        input=pb.Payload(data=b"x")), timeout=T)
        for _ in range(4):
            self.srv.stub.list(pb.ListPipelinesRequest(), timeout=T)
        with self.assertRaises(grpc.RpcError):
            self.srv.stub.get(pb.GetPipelineRequest(name="nope"), timeout=T)
        self.srv.stub.health(hpb.HealthCheckRequest(), timeout=T)
        unknown = self.srv.channel.unary_unary("/corepipe.v1.Pipeline/Nope")
        for _ in range(2):
            with self.assertRaises(grpc.RpcError) as cm:
                unknown(b"", timeout=T)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        after = scrape(self.srv)

        def d(service, method, code):
            return handled(after, service, method, code) - handled(before, service, method,
                                                                     code)
        self.assertEqual(d("corepipe.v1.Pipeline", "Execute", "OK"), 7)
        self.assertEqual(d("corepipe.v1.Pipeline", "Execute", "InvalidArgument"), 5)
        self.assertEqual(d("corepipe.v1.Pipeline", "Execute", "NotFound"), 3)
        self.assertEqual(d("corepipe.v1.Admin", "ListPipelines", "OK"), 4)
        self.assertEqual(d("corepipe.v1.Admin", "GetPipeline", "NotFound"), 1)
        self.assertEqual(d("grpc.health.v1.Health", "Check", "OK"), 1)
        self.assertEqual(d("unknown", "unknown", "Unimplemented"), 2)
        # Methods never called are there at zero (rate() works from the first scrape).
        self.assertIn((("grpc_server_handled_total"),
                       tuple(sorted({"grpc_service": "corepipe.v1.Admin",
                                     "grpc_method": "ReloadConfig", "grpc_code": "OK",
                                     "grpc_type": "unary"}.items()))), after)
        # corepipe_requests_total stays what the workers completed: the 5 invalid calls never
        # reached one.
        self.assertEqual(value(after, "corepipe_requests_total", pipeline="pass", code="OK") -
                         value(before, "corepipe_requests_total", pipeline="pass", code="OK"), 7)

    def test_bytes_per_pipeline_and_get_stats_agree(self):
        before = scrape(self.srv)
        sizes = [1, 100, 4096, 12345]
        for n in sizes:
            self.srv.stub.execute(pb.ExecuteRequest(name="pass",
                                                    input=pb.Payload(data=b"a" * n)), timeout=T)
            self.srv.stub.execute(pb.ExecuteRequest(name="crc",
                                                    input=pb.Payload(data=b"b" * n)), timeout=T)
        after = scrape(self.srv)

        def d(name, **kw):
            return value(after, name, **kw) - value(before, name, **kw)
        self.assertEqual(d("corepipe_processed_bytes_total", pipeline="pass", direction="in"),
                         sum(sizes))
        self.assertEqual(d("corepipe_processed_bytes_total", pipeline="pass", direction="out"),
                         sum(sizes))
        self.assertEqual(d("corepipe_processed_bytes_total", pipeline="crc", direction="in"),
                         sum(sizes))
        st = self.srv.stub.stats(pb.GetStatsRequest(), timeout=T)
        m = scrape(self.srv)
        by_name = {p.name: p for p in st.pipelines}
        self.assertLessEqual({"pass", "crc"}, set(by_name))
        for name in ("pass", "crc"):
            p = by_name[name]
            self.assertGreater(p.id, 0)
            self.assertEqual(p.bytes_in, value(m, "corepipe_processed_bytes_total",
                                               pipeline=name, direction="in"))
            self.assertEqual(p.bytes_out, value(m, "corepipe_processed_bytes_total",
                                                pipeline=name, direction="out"))
            self.assertEqual(p.by_code["OK"], value(m, "corepipe_requests_total",
                                                    pipeline=name, code="OK"))
            self.assertEqual(p.requests, sum(p.by_code.values()))
            self.assertEqual(p.answered, value(m, "corepipe_server_duration_seconds_count",
                                               pipeline=name))
            self.assertGreater(p.dataplane_seconds, 0)
            self.assertGreaterEqual(p.server_seconds, p.dataplane_seconds)

    def test_busy_seconds_counter_and_buckets_to_10s(self):
        a = scrape(self.srv)
        for _ in range(50):
            self.srv.stub.execute(pb.ExecuteRequest(name="crc",
                                                    input=pb.Payload(data=b"z" * 65536)),
                                  timeout=T)
        b = scrape(self.srv)
        busy_a = value(a, "corepipe_worker_busy_seconds_total", worker="0")
        busy_b = value(b, "corepipe_worker_busy_seconds_total", worker="0")
        self.assertGreater(busy_b, busy_a)  # a counter: it moved with the work
        les = {float(dict(k[1])["le"]) for k in b
               if k[0] == "corepipe_request_duration_seconds_bucket"}
        for le in (1.0, 2.5, 5.0, 10.0, float("inf")):
            self.assertIn(le, les)

    def test_process_metrics_match_the_process(self):
        m = scrape(self.srv)
        pid = self.srv.proc.pid
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        # The scrape's own connection comes and goes: within a few descriptors.
        self.assertLessEqual(abs(value(m, "process_open_fds") - fds), 4)
        with open(f"/proc/{pid}/limits") as f:
            soft = next(int(l.split()[3]) for l in f if l.startswith("Max open files"))
        self.assertEqual(value(m, "process_max_fds"), soft)
        with open(f"/proc/{pid}/statm") as f:
            vsz_pages, rss_pages = (int(x) for x in f.read().split()[:2])
        page = os.sysconf("SC_PAGE_SIZE")
        self.assertEqual(value(m, "process_virtual_memory_bytes") // page // 1024,
                         vsz_pages // 1024)
        self.assertGreater(value(m, "process_resident_memory_bytes"), 0)
        self.assertGreater(value(m, "process_cpu_seconds_total"), 0)
        # Start time: the same second as the kernel's record of the process.
        with open("/proc/stat") as f:
            btime = next(int(l.split()[1]) for l in f if l.startswith("btime"))
        with open(f"/proc/{pid}/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        self.assertAlmostEqual(value(m, "process_start_time_seconds"),
                               btime + start / os.sysconf("SC_CLK_TCK"), delta=0.02)

    def test_build_info_carries_the_version(self):
        with open(os.path.join(ROOT, "VERSION")) as f:
            version = f.read().strip()
        m = scrape(self.srv)
        info = [dict(k[1]) for k, v in m.items() if k[0] == "corepipe_build_info" and v == 1]
        self.assertEqual(len(info), 1)
        self.assertEqual(info[0]["version"], version)
        self.assertTrue(info[0]["revision"])
        self.assertTrue(info[0]["dpdk"].startswith("DPDK "))
        out = subprocess.run([self.srv.args[0], "--version"], capture_output=True, text=True,
                             timeout=T)
        self.assertEqual(out.returncode, 0)
        self.assertEqual(out.stdout.splitlines()[0], f"corepiped {version}")
        self.assertIn(f"revision: {info[0]['revision']}", out.stdout)

    def test_promtool_check_metrics(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: scripts/deps.sh test installs it")
        _, _, body = get(self.srv.metrics_port, "/metrics")
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
