"""The operator HTTP endpoint of a started corepiped: /metrics parsed with Debian's
python3-prometheus-client text parser, values moving as requests run (counters, both
histograms, rejections, gauges), /healthz and /readyz through start and drain."""
import os
import threading
import time
import unittest
import urllib.error
import urllib.request

import grpc
from prometheus_client.parser import text_string_to_metric_families

import corepipe_pb2 as pb
from serverlib import RPC_TIMEOUT_S as T, S16, Server, audio, wait_until

CONFIG = """
pipelines:
  crc:
    - type: crc32c
  speech:
    - type: resample
      params: { rate: "8000" }
"""


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=T) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def scrape(srv):
    status, ctype, body = get(srv.metrics_port, "/metrics")
    assert status == 200, status
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def sum_over(m, name):
    """The sum of every sample of metric @name (all label values)."""
    return sum(v for (n, _), v in m.items() if n == name)


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0, cls.srv.log()

    def test_counters_and_histograms_move(self):
        before = scrape(self.srv)
        for _ in range(20):
            self.srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"m")),
                                  timeout=T)
        with self.assertRaises(grpc.RpcError):
            self.srv.stub.execute(pb.ExecuteRequest(name="nope", input=pb.Payload(data=b"m")),
                                  timeout=T)
        with self.assertRaises(grpc.RpcError) as cm:  # bytes into a resampler
            self.srv.stub.execute(pb.ExecuteRequest(name="speech", input=pb.Payload(data=b"m")),
                                  timeout=T)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.srv.stub.execute(pb.ExecuteRequest(name="speech", input=audio(S16, b"\0\0" * 160)),
                              timeout=T)
        after = scrape(self.srv)
        d = lambda name, **kw: value(after, name, **kw) - value(before, name, **kw)  # noqa: E731
        self.assertEqual(d("corepipe_requests_total", pipeline="crc", code="OK"), 20)
        self.assertEqual(d("corepipe_requests_total", pipeline="speech", code="OK"), 1)
        self.assertEqual(d("corepipe_rejected_total", reason="not_found"), 1)
        # Histograms: 20 more observations, buckets cumulative up to +Inf = count.
        for hist in ("corepipe_request_duration_seconds", "corepipe_server_duration_seconds"):
            self.assertEqual(d(hist + "_count", pipeline="crc"), 20)
            self.assertEqual(value(after, hist + "_bucket", pipeline="crc", le="+Inf"),
                             value(after, hist + "_count", pipeline="crc"))
            self.assertGreater(d(hist + "_sum", pipeline="crc"), 0)
            les = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                         if k[0] == hist + "_bucket" and dict(k[1])["pipeline"] == "crc")
            self.assertEqual([v for _, v in les], sorted(v for _, v in les))  # cumulative
        # Server time includes data-plane time.
        self.assertGreaterEqual(value(after, "corepipe_server_duration_seconds_sum",
                                      pipeline="crc"),
                                value(after, "corepipe_request_duration_seconds_sum",
                                      pipeline="crc"))

    def test_gauges_and_build_info(self):
        m = scrape(self.srv)
        self.assertEqual(value(m, "corepipe_queue_depth", worker="0"), 0)
        self.assertEqual(value(m, "corepipe_inflight"), 0)
        self.assertEqual(value(m, "corepipe_load_shedding_active", worker="0"), 0)
        self.assertGreaterEqual(value(m, "corepipe_worker_busy_ratio", worker="0"), 0)
        self.assertLessEqual(value(m, "corepipe_worker_busy_ratio", worker="0"), 1)
        self.assertEqual(value(m, "corepipe_pool_in_use", pool="descriptors"), 0)
        self.assertGreater(value(m, "corepipe_pool_capacity", pool="descriptors"), 0)
        self.assertGreaterEqual(value(m, "corepipe_grpc_connections"), 1)
        self.assertTrue(any(k[0] == "corepipe_build_info" and v == 1 for k, v in m.items()))
        # Busy and loop time as counters (top takes their rates), process metrics.
        busy = value(m, "corepipe_worker_busy_seconds_total", worker="0")
        loop = value(m, "corepipe_worker_loop_seconds_total", worker="0")
        self.assertGreater(loop, 0)
        self.assertLessEqual(busy, loop)
        rss = value(m, "process_resident_memory_bytes")
        with open(f"/proc/{self.srv.proc.pid}/statm") as f:
            statm_rss = int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")
        self.assertGreater(rss, statm_rss // 2)
        self.assertLess(rss, statm_rss * 2)
        start = value(m, "process_start_time_seconds")
        self.assertLessEqual(start, time.time())
        self.assertGreater(start, self.srv.started_at - 5)
        self.assertGreater(value(m, "process_cpu_seconds_total"), 0)

    def test_streams_and_inflight_are_visible(self):
        gate = threading.Event()

        def reqs():
            yield pb.StreamRequest(open=pb.StreamOpen(name="speech"))
            yield pb.StreamRequest(frame=audio(S16, b"\0\0" * 160))
            gate.wait(10)

        call = self.srv.stub.stream(reqs(), timeout=30)
        next(call)
        m = scrape(self.srv)
        # Bound to one worker: the front end's own lcore or a worker-only one.
        self.assertEqual(sum_over(m, "corepipe_streams_open"), 1)
        self.assertGreaterEqual(value(m, "corepipe_grpc_streams_active"), 1)
        gate.set()
        list(call)
        self.assertTrue(wait_until(
            lambda: sum_over(scrape(self.srv), "corepipe_streams_open") == 0, 5))

    def test_health_endpoints(self):
        self.assertEqual(get(self.srv.metrics_port, "/healthz")[0], 200)
        status, _, body = get(self.srv.metrics_port, "/readyz")
        self.assertEqual((status, body), (200, "ready\n"))
        self.assertEqual(get(self.srv.metrics_port, "/nope")[0], 404)


class ReadyzDrainTest(unittest.TestCase):
    def test_readyz_turns_503_while_draining(self):
        s = Server(CONFIG + "    - type: test_delay\n      params: { us: 1000000 }\n"
                   "server: { shutdown_grace_ms: 5000 }\n").start()
        fut = s.stub.execute.future(pb.ExecuteRequest(name="speech",
                                                      input=audio(S16, b"\0\0" * 16)), timeout=30)
        # The call is in the server (for the 1 s of its test_delay) before the signal: a drain.
        self.assertTrue(wait_until(lambda: s.metric("corepipe_grpc_streams_active") >= 1, 10))
        s.proc.send_signal(15)
        self.assertTrue(wait_until(lambda: get(s.metrics_port, "/readyz")[0] == 503, 5))
        self.assertEqual(get(s.metrics_port, "/healthz")[0], 200)
        fut.result(timeout=T)
        self.assertEqual(s.proc.wait(30), 0, s.log())
        s.close()


if __name__ == "__main__":
    unittest.main()
