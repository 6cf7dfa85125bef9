"""Hitless restart (server.takeover_socket): a new corepiped takes the running one's listening
sockets over, the old one drains. Under client load (clients with the tree's service config,
clients/service-config.json: round_robin, health checking, retries): zero failed calls, zero
CANCELLED, over two successive restarts; a stream open across the restart finishes on the old
process."""
import os
import struct
import tempfile
import threading
import time
import unittest

import grpc

import corepipe_pb2 as pb
from serverlib import Server, audio, S16, wait_until

T = 10
CLIENTS = 4
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
with open(os.path.join(ROOT, "clients", "service-config.json")) as _f:
    SERVICE_CONFIG = _f.read()
CHANNEL_OPTIONS = [("grpc.service_config", SERVICE_CONFIG), ("grpc.enable_retries", 1)]
# Calls each phase must see succeed (counts, not time: bounded by LOAD_WAIT_S each).
CALLS_PER_PHASE = 200
LOAD_WAIT_S = 60

CONFIG = """
server:
  takeover_socket: "{sock}"
  shutdown_grace_ms: 30000
  # Health-checking clients stop sending to the old process before its GOAWAY.
  shutdown_delay_ms: 1000
pipelines:
  p:
    - type: passthrough
  loud:
    - type: gain
      params: {{ db: "6" }}
"""


class Load:
    """CLIENTS threads, each with its own channel (own connection), calling Execute until
    stopped; every status is counted."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(CLIENTS)]

    def run(self, i):
        ch = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=CHANNEL_OPTIONS)
        ex = ch.unary_unary("/corepipe.v1.Pipeline/Execute",
                            request_serializer=pb.ExecuteRequest.SerializeToString,
                            response_deserializer=pb.ExecuteResponse.FromString)
        n = 0
        while not self.stop.is_set():
            data = b"%d-%d" % (i, n)
            try:
                r = ex(pb.ExecuteRequest(name="p", input=pb.Payload(data=data)), timeout=T,
                       wait_for_ready=True)
                with self.lock:
                    if r.output.data == data:
                        self.ok += 1
                    else:
                        self.errors.append(("wrong answer", data, r.output.data))
            except grpc.RpcError as e:
                with self.lock:
                    self.errors.append((e.code(), e.details()))
            n += 1
        ch.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def wait_more(self, n):
        start = self.ok
        return wait_until(lambda: self.ok >= start + n, timeout_s=LOAD_WAIT_S)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)


class TakeoverTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="corepipe-takeover-")
        self.sock = os.path.join(self.dir.name, "takeover.sock")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()
        self.dir.cleanup()

    def server(self):
        s = Server(CONFIG.format(sock=self.sock))
        self.servers.append(s)
        return s.start()

    def offered(self, srv):
        return wait_until(lambda: any(o.get("msg") == "serving" for o in srv.logs_json())
                          and os.path.exists(self.sock))

    def test_restart_under_load_zero_failed_calls_stream_finishes_on_old(self):
        a = self.server()
        self.assertTrue(self.offered(a))
        load = Load(a.port).start()
        # A stream opened on the old process before the restart, fed after it.
        fed_after = threading.Event()
        frames = [[(i * 31 + k) % 2000 - 1000 for k in range(160)] for i in range(20)]

        def reqs():
            yield pb.StreamRequest(open=pb.StreamOpen(name="loud"))
            for i, f in enumerate(frames):
                if i == 10:
                    fed_after.wait(LOAD_WAIT_S)
                yield pb.StreamRequest(frame=audio(S16, struct.pack("<%dh" % len(f), *f)))

        stream_out = []
        stream_err = []

        def stream_main():
            try:
                for r in a.stub.stream(reqs(), timeout=LOAD_WAIT_S * 2):
                    stream_out.append(r.seq)
            except grpc.RpcError as e:
                stream_err.append((e.code(), e.details()))

        st = threading.Thread(target=stream_main, daemon=True)
        st.start()
        try:
            self.assertTrue(load.wait_more(CALLS_PER_PHASE), load.errors)
            self.assertTrue(wait_until(lambda: len(stream_out) >= 10), stream_out)

            b = self.server()  # takes a's sockets over
            self.assertEqual(b.port, a.port)
            self.assertTrue(wait_until(lambda: any(
                o.get("msg") == "takeover: done, the old process drains"
                and o.get("old_pid") == a.proc.pid for o in b.logs_json())), b.log())
            # The stream is still open on a, which stays until it finishes.
            fed_after.set()
            st.join(LOAD_WAIT_S)
            self.assertEqual(stream_err, [])
            self.assertEqual(stream_out, list(range(21)))
            self.assertEqual(a.proc.wait(60), 0, a.log())
            # Calls go on, served by b only now.
            self.assertTrue(load.wait_more(CALLS_PER_PHASE), load.errors)
            # b offers in its turn: a second restart, c takes over from b.
            c = self.server()
            self.assertEqual(c.port, a.port)
            self.assertEqual(b.proc.wait(60), 0, b.log())
            self.assertTrue(load.wait_more(CALLS_PER_PHASE), load.errors)
        finally:
            fed_after.set()
            load.finish()
        self.assertEqual(load.errors, [])
        a_logs = a.logs_json()
        self.assertTrue(any(o.get("msg") == "taken over: the new process serves, draining"
                            and o.get("new_pid") == b.proc.pid for o in a_logs), a.log())
        for old in (a, b):
            drained = [o for o in old.logs_json() if o.get("msg") == "drained"]
            self.assertEqual(len(drained), 1, old.log())
            self.assertEqual(drained[0]["cancelled_after_grace"], 0)
        stats = c.stub.stats(pb.GetStatsRequest(), timeout=T)
        self.assertGreater(stats.answered, CALLS_PER_PHASE // 2)
        self.assertEqual(c.stop(), 0)

    def test_failed_successor_leaves_the_old_one_serving(self):
        a = self.server()
        self.assertTrue(self.offered(a))
        # A successor that receives the sockets, then fails to start: its metrics address
        # is a's metrics port under another name (not offered, so bound: in use).
        bad = Server(CONFIG.format(sock=self.sock))
        bad.env["COREPIPE_SERVER_METRICS_LISTEN"] = f"127.0.0.1:{a.metrics_port}"
        self.servers.append(bad)
        with self.assertRaises(RuntimeError):
            bad.start()
        self.assertEqual(bad.proc.wait(30), 3, bad.log())
        self.assertTrue(any(o.get("msg") == "takeover: listening sockets received"
                            for o in bad.logs_json()), bad.log())
        self.assertTrue(wait_until(lambda: any(
            o.get("msg") == "takeover abandoned: still serving" for o in a.logs_json())),
            a.log())
        r = a.stub.execute(pb.ExecuteRequest(name="p", input=pb.Payload(data=b"x")), timeout=T)
        self.assertEqual(r.output.data, b"x")
        self.assertIsNone(a.proc.poll())
        # And a good successor still can (this one named by the command line).
        cfg = "\n".join(line for line in CONFIG.format(sock=self.sock).splitlines()
                        if "takeover_socket" not in line)
        b = Server(cfg, extra_args=["--takeover", self.sock])
        self.servers.append(b)
        b.start()
        self.assertEqual(b.port, a.port)
        self.assertEqual(a.proc.wait(60), 0, a.log())
        self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    unittest.main()
