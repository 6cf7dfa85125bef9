"""Load patterns against one started corepiped (from the overload issue's suite): many clients
with few requests each, bursts, a spike with cool-down, a ramp-up, shared vs. own channels and
contention on one channel. Every answer is checked; every loop is bounded in count and time."""
import threading
import time
import unittest

import grpc

import corepipe_pb2 as pb
from reference import crc32c
from serverlib import RPC_TIMEOUT_S as T, Stubs, module_server, unary, wait_until

CONFIG = """
pipelines:
  crc:
    - type: crc32c
"""

WALL_S = 120
srv = None
setUpModule, tearDownModule = module_server(globals(), CONFIG)


def stats():
    return unary(srv.channel, "/corepipe.v1.Admin/GetStats", pb.GetStatsRequest,
                 pb.Stats)(pb.GetStatsRequest(), timeout=T)


def new_channel():
    return grpc.insecure_channel(f"127.0.0.1:{srv.port}",
                                 options=[("grpc.use_local_subchannel_pool", 1)])


def run_clients(n_clients, n_requests, shared=None, pace_s=0.0):
    """n_clients threads x n_requests calls; each on its own channel unless `shared` (a
    channel) is given. Returns the list of failures (empty when all answers were right)."""
    failures, lock = [], threading.Lock()
    deadline = time.monotonic() + WALL_S

    def client(idx):
        ch = shared or new_channel()
        st = Stubs(ch)
        for k in range(n_requests):
            data = b"client %d request %d" % (idx, k)
            if time.monotonic() > deadline:
                with lock:
                    failures.append((idx, "wall-clock limit"))
                return
            try:
                r = st.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=data)),
                               timeout=T)
                if r.output.data != data or r.annotations["crc32c"] != crc32c(data):
                    with lock:
                        failures.append((idx, "wrong answer"))
            except grpc.RpcError as e:
                with lock:
                    failures.append((idx, e.code(), e.details()))
            if pace_s:
                time.sleep(pace_s)
        if shared is None:
            ch.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WALL_S + 10)
        assert not t.is_alive(), "client hung"
    return failures


class LoadPatternsTest(unittest.TestCase):
    def test_many_clients_few_requests(self):
        for clients, requests in ((10, 5), (50, 3), (100, 2)):
            with self.subTest(clients=clients, requests=requests):
                self.assertEqual(run_clients(clients, requests), [])

    def test_sustained_paced_load(self):
        # 10 clients for ~3 s at ~100 req/s each.
        self.assertEqual(run_clients(10, 300, pace_s=0.01), [])

    def test_bursts(self):
        for _ in range(3):
            futures = [srv.stub.execute.future(
                pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"burst %d" % i)),
                timeout=T) for i in range(50)]
            for i, f in enumerate(futures):
                self.assertEqual(f.result(timeout=T).annotations["crc32c"],
                                 crc32c(b"burst %d" % i))
            time.sleep(0.2)

    def test_spike_then_cool_down(self):
        def ping_p50():
            lat = []
            for _ in range(50):
                t0 = time.monotonic()
                srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"p")),
                                 timeout=T)
                lat.append(time.monotonic() - t0)
            return sorted(lat)[len(lat) // 2]

        base = ping_p50()
        self.assertEqual(run_clients(50, 20), [])
        # Back to normal: nothing queued, nothing in flight, latency near its baseline
        # (a loose bound: this machine is shared).
        self.assertTrue(wait_until(lambda: stats().in_flight == 0, 10))
        self.assertTrue(all(w.queue_depth == 0 for w in stats().workers))
        self.assertLess(ping_p50(), max(10 * base, 0.05))

    def test_ramp_up(self):
        for clients in (5, 10, 15, 20):
            with self.subTest(clients=clients):
                self.assertEqual(run_clients(clients, 10), [])

    def test_shared_channel_contention_and_mixed(self):
        shared = new_channel()
        try:
            self.assertEqual(run_clients(20, 20, shared=shared), [])
            # Mixed: half the clients on the shared channel, half on their own, at once.
            out = []
            a = threading.Thread(target=lambda: out.append(run_clients(10, 20, shared=shared)))
            b = threading.Thread(target=lambda: out.append(run_clients(10, 20)))
            a.start()
            b.start()
            a.join(WALL_S + 20)
            b.join(WALL_S + 20)
            self.assertEqual(out, [[], []])
        finally:
            shared.close()


class IsolationTest(unittest.TestCase):
    def test_poison_client_fails_alone(self):
        """One client sends malformed and poison requests while ten others run: only its
        calls fail, each with the right status."""
        raw = srv.channel.unary_unary("/corepipe.v1.Pipeline/Execute")
        bad = [
            (lambda: raw(b"\xff\xfe\xfd", timeout=T), grpc.StatusCode.INVALID_ARGUMENT),
            (lambda: srv.stub.execute(pb.ExecuteRequest(name="nope", input=pb.Payload(data=b"x")),
                                      timeout=T), grpc.StatusCode.NOT_FOUND),
            (lambda: srv.stub.execute(pb.ExecuteRequest(
                inline=pb.PipelineSpec(nodes=[pb.NodeSpec(type="gain", params={"db": "nan"})]),
                input=pb.Payload(data=b"x")), timeout=T), grpc.StatusCode.INVALID_ARGUMENT),
            (lambda: srv.stub.execute(pb.ExecuteRequest(
                inline=pb.PipelineSpec(nodes=[pb.NodeSpec(type="gain", params={"db": "1"})]),
                input=pb.Payload(data=b"bytes, not audio")), timeout=T),
             grpc.StatusCode.INVALID_ARGUMENT),
            (lambda: srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(
                audio=pb.AudioBuffer(format=1, sample_rate=8000, channels=1, samples=b"odd"))),
                timeout=T), grpc.StatusCode.INVALID_ARGUMENT),
            (lambda: srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(
                data=b"z" * (5 << 20))), timeout=T), grpc.StatusCode.RESOURCE_EXHAUSTED),
        ]
        poison_errors = []
        done = threading.Event()

        def poison():
            for _ in range(10):
                for call, code in bad:
                    try:
                        call()
                        poison_errors.append("poison call succeeded")
                    except grpc.RpcError as e:
                        if e.code() != code:
                            poison_errors.append((code, e.code(), e.details()))
            done.set()

        t = threading.Thread(target=poison)
        t.start()
        self.assertEqual(run_clients(10, 50), [])
        t.join(WALL_S)
        self.assertTrue(done.is_set())
        self.assertEqual(poison_errors, [])


if __name__ == "__main__":
    unittest.main()
