"""The gRPC front end's life: it starts inside any CPU set (taskset, a cpuset cgroup) with every
thread inside it, it goes lame duck and drains without losing a call whose request bytes are
still arriving, and it defends its connections (handshake deadline, per-peer limit, exact
accounting, out of file descriptors, HTTP/2 rapid reset).

Every wait is bounded; assertions are on statuses, counts and orderings, never on durations."""
import json
import os
import resource
import signal
import socket
import tempfile
import threading
import time
import unittest

import grpc

import corepipe_pb2 as pb
import health_pb2 as hpb
from reference import crc32c
from test_stream import frame_s16, open_named
from serverlib import (COREPIPED, MODE, SANITIZED, RPC_TIMEOUT_S as T, Server, Stubs, unary,
                       wait_until)

# scripts/run-integration.py runs this module with nothing beside it:
RUN_ALONE = ("it moves servers into CPU sets (taskset, a cpuset cgroup it makes at the "
             "hierarchy's root) and a memory cgroup, and runs one out of file descriptors")

CONFIG = """
pipelines:
  pass:
    - type: passthrough
  crc:
    - type: crc32c
  z:
    - type: zstd_compress
      params: { level: 1 }
  zslow:
    - type: zstd_compress
      params: { level: 1 }
    - type: test_delay
      params: { us: 20000 }
"""


def stats(srv, ch=None):
    return unary(ch or srv.channel, "/corepipe.v1.Admin/GetStats", pb.GetStatsRequest,
                 pb.Stats)(pb.GetStatsRequest(), timeout=T)


def metric(srv, name, **labels):
    return srv.metric(name, **labels)


def check_crc(stub, data, timeout=T):
    r = stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=data)), timeout=timeout)
    return r.annotations["crc32c"] == crc32c(data)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def thread_cpus(pid):
    """{thread name: Cpus_allowed_list} of every thread of @pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
        except FileNotFoundError:
            continue  # a thread that just ended
        out[f"{st['Name']}/{tid}"] = st["Cpus_allowed_list"].strip()
    return out


def default_map_server(config, prefix=(), preexec=None):
    """A server on the default lcore map (no --workers/--frontends): what a user gets."""
    srv = Server(config)
    srv.args = [*prefix, COREPIPED, "--config", srv.config, "--grpc-listen", "127.0.0.1:0"]
    srv.preexec = preexec
    return srv


def serving_line(srv):
    return next(l for l in srv.logs_json() if l.get("msg") == "serving")


class CpuSetTest(unittest.TestCase):
    """Started inside a one-CPU set, the server runs one lcore with every role, and no thread
    of the process (gRPC's, liburcu's, the EAL's included) may run elsewhere."""

    def check_one_cpu(self, srv, cpu):
        line = serving_line(srv)
        self.assertEqual(line["roles"], f"0@{cpu}:frontend+worker+control", line)
        for i in range(20):
            self.assertTrue(check_crc(srv.stub, b"cpuset %d" % i))
        st = stats(srv)
        self.assertEqual(len(st.workers), 1)
        self.assertEqual(sum(w.requests for w in st.workers), 20)
        cpus = thread_cpus(srv.proc.pid)
        self.assertGreater(len(cpus), 4, cpus)  # lcore, control, accept, http, gRPC's ...
        for name, allowed in cpus.items():
            self.assertEqual(allowed, str(cpu), f"thread {name} may run on CPUs {allowed}")

    def test_taskset_each_cpu(self):
        for cpu in sorted(os.sched_getaffinity(0))[:2]:
            with self.subTest(cpu=cpu):
                srv = default_map_server(CONFIG, prefix=("taskset", "-c", str(cpu))).start()
                try:
                    self.check_one_cpu(srv, cpu)
                finally:
                    code = srv.stop()
                self.assertEqual(code, 0, srv.log())

    def test_cpuset_cgroup(self):
        cpu = max(os.sched_getaffinity(0))
        root = next((d for d in ("/sys/fs/cgroup/cpuset", "/sys/fs/cgroup")
                     if os.path.exists(os.path.join(d, "cpuset.cpus"))
                     or os.path.exists(os.path.join(d, "cgroup.subtree_control"))), None)
        if root is None or not os.access(root, os.W_OK):
            self.skipTest("no writable cpuset cgroup hierarchy")
        group = tempfile.mkdtemp(prefix="corepipe-it-", dir=root)
        try:
            v1 = os.path.exists(os.path.join(group, "tasks"))
            if not v1:
                with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                    f.write("+cpuset")
            with open(os.path.join(group, "cpuset.cpus"), "w") as f:
                f.write(str(cpu))
            if v1:
                with open(os.path.join(group, "cpuset.mems"), "w") as f:
                    f.write("0")
            procs = os.path.join(group, "cgroup.procs")

            def enter():
                with open(procs, "w") as f:
                    f.write("0")  # this process, before exec

            srv = default_map_server(CONFIG, preexec=enter).start()
            try:
                with open(procs) as f:
                    self.assertIn(str(srv.proc.pid), f.read().split())
                self.check_one_cpu(srv, cpu)
            finally:
                code = srv.stop()
            self.assertEqual(code, 0, srv.log())
        finally:
            os.rmdir(group)


class LameDuckTest(unittest.TestCase):
    """server.shutdown_delay_ms: health says NOT_SERVING (Check and Watch) at once while calls
    are still served; then new calls get UNAVAILABLE, Watch ends UNAVAILABLE, exit 0."""

    def test_not_serving_then_drain(self):
        srv = Server(CONFIG + "server: { shutdown_delay_ms: 10000 }\n").start()
        check = unary(srv.channel, "/grpc.health.v1.Health/Check", hpb.HealthCheckRequest,
                      hpb.HealthCheckResponse)
        watch = srv.channel.unary_stream("/grpc.health.v1.Health/Watch",
                                         request_serializer=hpb.HealthCheckRequest.SerializeToString,
                                         response_deserializer=hpb.HealthCheckResponse.FromString)
        S = hpb.HealthCheckResponse
        seen, watch_end = [], {}

        def watcher():
            try:
                for r in watch(hpb.HealthCheckRequest(), timeout=60):
                    seen.append(r.status)
                watch_end["code"] = "OK"
            except grpc.RpcError as e:
                watch_end["code"] = e.code().name
                watch_end["details"] = e.details()

        wt = threading.Thread(target=watcher)
        wt.start()
        try:
            self.assertTrue(wait_until(lambda: seen == [S.SERVING], T))
            srv.proc.send_signal(signal.SIGTERM)
            self.assertTrue(wait_until(
                lambda: check(hpb.HealthCheckRequest(), timeout=T).status == S.NOT_SERVING, T))
            self.assertTrue(wait_until(lambda: S.NOT_SERVING in seen, T), seen)
            # Lame duck: still served. Every call answered before the "draining" line is OK;
            # after it, new calls are UNAVAILABLE (and only then).
            before, after = 0, 0
            for i in range(400):
                drained = any(l.get("msg") == "draining" for l in srv.logs_json())
                try:
                    ok = check_crc(srv.stub, b"lame duck %d" % i)
                    self.assertTrue(ok)
                    before += 1
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE, e.details())
                    self.assertIn("shutting down", e.details())
                    self.assertTrue(wait_until(lambda: any(
                        l.get("msg") == "draining" for l in srv.logs_json()), T), srv.log())
                    after += 1
                    break
                if drained:
                    break
                if i >= 20:
                    time.sleep(0.1)
            self.assertGreater(before, 0)
            code = srv.proc.wait(60)
        finally:
            wt.join(60)
            srv.kill()
        self.assertEqual(code, 0, srv.log())
        self.assertEqual(seen[:2], [S.SERVING, S.NOT_SERVING], seen)
        self.assertEqual(watch_end.get("code"), "UNAVAILABLE", watch_end)
        phases = [l["msg"] for l in srv.logs_json()
                  if l.get("msg") in ("lame duck: NOT_SERVING, still serving", "draining",
                                      "drained")]
        self.assertEqual(phases, ["lame duck: NOT_SERVING, still serving", "draining",
                                  "drained"], srv.log())


class HeldUploads:
    """@n unary Execute calls on one raw HTTP/2 connection (python3-h2), each sent as its
    headers and the first half of its request message, the rest held back until finish():
    calls whose request bytes are still arriving, for as long as the test wants. Every
    message is small enough for HTTP/2's default windows (no WINDOW_UPDATE needed)."""

    def __init__(self, port, name, n, size=4000):
        import h2.config
        import h2.connection

        self.sock = socket.create_connection(("127.0.0.1", port))
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        req = pb.ExecuteRequest(name=name, input=pb.Payload(data=bytes(range(256)) * (size // 256)))
        body = req.SerializeToString()
        self.msg = b"\0" + len(body).to_bytes(4, "big") + body
        self.want = req.input.data
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1:%d" % port),
                   (":path", "/corepipe.v1.Pipeline/Execute"),
                   ("content-type", "application/grpc"), ("te", "trailers")]
        self.ids = []
        for _ in range(n):
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(sid, headers)
            self.conn.send_data(sid, self.msg[:len(self.msg) // 2])
            self.ids.append(sid)
        self.sock.sendall(self.conn.data_to_send())

    def finish(self, timeout_s):
        """Send the held halves, then read every answer: {stream id: (grpc-status, output)}."""
        import h2.events

        for sid in self.ids:
            self.conn.send_data(sid, self.msg[len(self.msg) // 2:], end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        out, data = {}, {}
        self.sock.settimeout(timeout_s)
        try:
            while len(out) < len(self.ids):
                chunk = self.sock.recv(65536)
                if chunk == b"":
                    break
                for ev in self.conn.receive_data(chunk):
                    if isinstance(ev, h2.events.DataReceived):
                        data[ev.stream_id] = data.get(ev.stream_id, b"") + ev.data
                        self.conn.acknowledge_received_data(ev.flow_controlled_length,
                                                            ev.stream_id)
                    elif isinstance(ev, (h2.events.TrailersReceived,
                                         h2.events.ResponseReceived)):
                        hdr = {k.decode() if isinstance(k, bytes) else k:
                               v.decode() if isinstance(v, bytes) else v for k, v in ev.headers}
                        if "grpc-status" in hdr:
                            out[ev.stream_id] = (int(hdr["grpc-status"]),
                                                 hdr.get("grpc-message", ""))
                    elif isinstance(ev, h2.events.StreamReset):
                        out[ev.stream_id] = ("RST_STREAM", ev.error_code)
                self.sock.sendall(self.conn.data_to_send())
        except (socket.timeout, ConnectionResetError):
            pass
        finally:
            self.sock.close()
        res = {}
        for sid in self.ids:
            got = data.get(sid, b"")
            output = None
            if len(got) >= 5:
                output = pb.ExecuteResponse.FromString(got[5:]).output.data
            res[sid] = out.get(sid, "no answer"), output
        return res


class UploadDrainTest(unittest.TestCase):
    """SIGTERM while 10 calls are held half uploaded, 200 more are uploading 1 MiB each and 20
    streams are open: every call the server had received is answered (OK, or
    RESOURCE_EXHAUSTED with pushback when the buffers ran out; never CANCELLED), the others
    are refused UNAVAILABLE, the streams finish every frame, exit 0."""

    HELD = 10

    def test_sigterm_while_requests_arrive(self):
        srv = Server(CONFIG).start()
        data = bytes(range(256)) * 4096  # 1 MiB
        # 20 ms of work each on top (200 x 20 ms on one worker: about 4 s, well within the
        # 30 s grace).
        req = pb.ExecuteRequest(name="zslow", input=pb.Payload(data=data))
        opened = threading.Barrier(21)
        signalled = threading.Event()
        streams = {}

        def streamer(idx):
            def reqs():
                yield open_named("pass")
                yield frame_s16([idx] * 160)
                opened.wait(30)
                signalled.wait(60)
                for _ in range(5):  # frames sent after the signal are still served
                    yield frame_s16([idx] * 160)

            try:
                streams[idx] = ("OK", len(list(srv.stub.stream(reqs(), timeout=120))))
            except grpc.RpcError as e:
                streams[idx] = (e.code().name, e.details())

        ts = [threading.Thread(target=streamer, args=(i,)) for i in range(20)]
        for t in ts:
            t.start()
        held = None
        try:
            opened.wait(30)
            # The calls surely open at the signal with their request bytes still arriving:
            # held half sent until after it. Waiting for the server to count all 30 open
            # calls (20 streams + the held ones) is an ordering, not a race with the uploads.
            held = HeldUploads(srv.port, "pass", self.HELD)
            self.assertTrue(wait_until(
                lambda: metric(srv, "corepipe_grpc_streams_active") >= 20 + self.HELD, 60),
                srv.log())
            futures = [srv.stub.execute.future(req, timeout=120) for _ in range(200)]
            # Signal while these are uploading too, as far as the machine's timing allows
            # (the held calls above are what the test counts on).
            wait_until(lambda: metric(srv, "corepipe_grpc_streams_active") > 20 + self.HELD, 2)
            srv.proc.send_signal(signal.SIGTERM)
            # The streams and the held calls go on once the drain has counted them (its
            # "draining" line: calls_open_at_signal is taken then, on the control tick after
            # the signal; going on at once let some finish before it, as CI once saw).
            self.assertTrue(wait_until(lambda: any(
                l.get("msg") == "draining" for l in srv.logs_json()), 30), srv.log())
            signalled.set()
            held_res = held.finish(60)
            for t in ts:
                t.join(120)
            codes = {}
            for f in futures:
                try:
                    r = f.result(timeout=120)
                    self.assertGreater(len(r.output.data), 0)
                    self.assertLess(len(r.output.data), len(data))
                    codes["OK"] = codes.get("OK", 0) + 1
                except grpc.RpcError as e:
                    codes[e.code().name] = codes.get(e.code().name, 0) + 1
                    # Retryable answers only: UNAVAILABLE (arrived after the drain began), or
                    # RESOURCE_EXHAUSTED with a pushback hint (the 1 MiB buffers ran out).
                    self.assertIn(e.code(), (grpc.StatusCode.UNAVAILABLE,
                                             grpc.StatusCode.RESOURCE_EXHAUSTED), e.details())
                    if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        self.assertIn("grpc-retry-pushback-ms",
                                      dict(e.trailing_metadata() or ()), e.details())
            code = srv.proc.wait(60)
        finally:
            signalled.set()
            if held is not None:
                held.sock.close()
            srv.kill()
        self.assertEqual(code, 0, srv.log())
        # The held calls: their second halves were sent after SIGTERM, and each is answered
        # OK with its whole input passed through.
        for sid, (status, output) in held_res.items():
            self.assertEqual(status[0] if isinstance(status, tuple) else status, 0,
                             (sid, status, srv.log()))
            self.assertEqual(output, held.want, sid)
        self.assertEqual(sum(codes.values()), 200, codes)
        self.assertNotIn("CANCELLED", codes)
        for i in range(20):  # 6 frames + the flush answer each
            self.assertEqual(streams.get(i), ("OK", 7), (i, streams.get(i)))
        drained = [l for l in srv.logs_json() if l.get("msg") == "drained"]
        self.assertEqual(len(drained), 1, srv.log())
        self.assertEqual(drained[0]["cancelled_after_grace"], 0)
        # Every call open at the signal (request bytes still arriving included) was answered.
        self.assertGreaterEqual(drained[0]["calls_open_at_signal"], 20 + self.HELD)
        self.assertGreaterEqual(codes.get("OK", 0) + codes.get("RESOURCE_EXHAUSTED", 0) + 20
                                + self.HELD, drained[0]["calls_open_at_signal"])


def raw_connect(port, src="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_by_peer(s, timeout_s):
    """True when the server closes @s (EOF or reset) within @timeout_s."""
    s.settimeout(timeout_s)
    try:
        while True:
            if s.recv(65536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class ConnectionDefenceTest(unittest.TestCase):
    def test_handshake_deadline_closes_silent_sockets(self):
        srv = Server(CONFIG + "server: { handshake_timeout_ms: 300 }\n").start()
        socks = []
        try:
            base = stats(srv).connections
            socks = [raw_connect(srv.port) for _ in range(20)]
            self.assertTrue(wait_until(lambda: stats(srv).connections == base + 20, T))
            for s in socks:
                self.assertTrue(closed_by_peer(s, 30), "a silent socket was kept open")
            self.assertTrue(wait_until(lambda: stats(srv).connections == base, T))
            self.assertTrue(check_crc(srv.stub, b"still serving"))
        finally:
            for s in socks:
                s.close()
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())

    def test_per_peer_limit_and_exact_count(self):
        srv = Server(CONFIG + "server: { max_connections_per_peer: 4 }\n").start()
        socks, others = [], []
        try:
            # Unrelated sockets on the same host do not count: a listener of our own with
            # connections to it, from the same and other loopback addresses.
            ln = socket.socket()
            ln.bind(("127.0.0.1", 0))
            ln.listen(16)
            others = [ln] + [raw_connect(ln.getsockname()[1], "127.0.0.%d" % (1 + i % 3))
                             for i in range(6)]
            self.assertEqual(stats(srv).connections, 1)  # the test's own channel
            socks = [raw_connect(srv.port) for _ in range(3)]
            self.assertTrue(wait_until(lambda: stats(srv).connections == 4, T))
            over = raw_connect(srv.port)
            socks.append(over)
            self.assertTrue(closed_by_peer(over, 30), "the 5th connection from 127.0.0.1")
            self.assertTrue(wait_until(
                lambda: metric(srv, "corepipe_grpc_connections_refused_total",
                               reason="peer") == 1, T))
            # Another address is another peer.
            self.assertEqual(stats(srv).connections, 4)
            other = socket.create_connection(("127.0.0.1", srv.port),
                                             source_address=("127.0.0.2", 0))
            socks.append(other)
            self.assertTrue(wait_until(lambda: stats(srv).connections == 5, T))
            for s in socks:
                s.close()
            self.assertTrue(wait_until(lambda: stats(srv).connections == 1, T))
            self.assertEqual(metric(srv, "corepipe_grpc_connections_refused_total",
                                    reason="limit"), 0)
        finally:
            for s in socks + others:
                s.close()
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())

    def test_out_of_file_descriptors(self):
        """With the descriptor limit spent, accept does not spin: pending connections are
        closed and counted, the log says so at most once a second, and the server serves
        again once descriptors free."""
        limit = 160

        def low_fds():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        def emfile_lines():
            return [l for l in srv.logs_json() if "file descriptors" in l.get("msg", "")]

        srv = Server(CONFIG)
        srv.preexec = low_fds
        srv.start()
        socks = []
        try:
            t0 = time.monotonic()
            # Each connection costs the server two descriptors (gRPC's and the count's).
            for _ in range(limit):
                socks.append(raw_connect(srv.port))
            self.assertTrue(wait_until(lambda: emfile_lines(), 30), srv.log())
            # The last ones were closed, not left in the backlog.
            self.assertTrue(closed_by_peer(socks[-1], 30))
            for s in socks:
                s.close()
            socks = []
            # Descriptors free: /metrics (also out of them meanwhile) and calls work again.
            self.assertTrue(wait_until(lambda: stats(srv).connections <= 1, 30))
            self.assertTrue(check_crc(srv.stub, b"after EMFILE"))
            self.assertGreater(metric(srv, "corepipe_grpc_connections_refused_total",
                                      reason="fds"), 0)
            elapsed = time.monotonic() - t0
            lines = emfile_lines()
            self.assertLessEqual(len(lines), int(elapsed) + 2, lines)
        finally:
            for s in socks:
                s.close()
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())


class RapidResetTest(unittest.TestCase):
    """CVE-2023-44487: a client that opens and cancels streams as fast as it can has its
    connection closed; a well-behaved client beside it gets every answer."""

    def flood(self, port, n):
        import h2.config
        import h2.connection
        import h2.events

        s = socket.create_connection(("127.0.0.1", port))
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        headers = [(":method", "POST"), (":scheme", "http"),
                   (":authority", "127.0.0.1:%d" % port),
                   (":path", "/corepipe.v1.Pipeline/Execute"),
                   ("content-type", "application/grpc"), ("te", "trailers")]
        sent, closed = 0, False
        s.settimeout(0)
        try:
            for _ in range(n):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, headers)
                conn.reset_stream(sid)
                s.sendall(conn.data_to_send())
                sent += 1
                try:
                    data = s.recv(65536)
                    if data == b"":
                        closed = True
                        break
                    for ev in conn.receive_data(data):
                        if isinstance(ev, h2.events.ConnectionTerminated):
                            closed = True
                except BlockingIOError:
                    pass
                if closed:
                    break
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        except h2.exceptions.ProtocolError:
            closed = True
        if not closed:
            closed = closed_by_peer(s, 30)
        s.close()
        return sent, closed

    def test_flooder_closed_others_served(self):
        srv = Server(CONFIG + "server: { max_cancels_per_second: 200 }\n").start()
        results = []
        stop = threading.Event()

        def good_client():
            ch = grpc.insecure_channel(f"127.0.0.1:{srv.port}",
                                       options=[("grpc.use_local_subchannel_pool", 1)])
            stub = Stubs(ch)
            i = 0
            t0 = time.monotonic()
            while not stop.is_set() and i < 200000 and time.monotonic() - t0 < 300:
                try:
                    # A sanitizer build parses the flood's backlog several times slower.
                    results.append(check_crc(stub, b"good %d" % i, 60 if SANITIZED else T))
                except grpc.RpcError as e:
                    results.append((e.code().name, e.details()))
                i += 1
            ch.close()

        gt = threading.Thread(target=good_client)
        gt.start()
        try:
            sent, closed = self.flood(srv.port, 20000)
            self.assertTrue(closed, f"flooding connection still open after {sent} resets")
            self.assertTrue(wait_until(lambda: metric(
                srv, "corepipe_grpc_connections_closed_total", reason="cancel_flood") >= 1, T))
            self.assertGreater(metric(srv, "corepipe_grpc_client_cancels_total"), 200)
            n = len(results)
            self.assertTrue(wait_until(lambda: len(results) >= n + 50, 60),
                            (n, len(results), results[-3:]))
        finally:
            stop.set()
            gt.join(60)
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())
        self.assertGreater(len(results), 50)
        self.assertEqual([r for r in results if r is not True], [])
        logs = [l for l in srv.logs_json() if "cancel" in l.get("msg", "")]
        self.assertGreater(len(logs), 0, srv.log())


class StreamMemoryTest(unittest.TestCase):
    """Hardening finding 2: 40 streams, each 8 paced frames of a zstd bomb (a few hundred bytes
    that inflate to ~4 MiB), that never read their answers: unbounded, 1.25 GiB of answers would
    wait. The front end stops reading streams once three quarters of its reply memory
    (server.max_response_bytes) are spent (the last quarter is for unary calls): memory stays bounded, health and other calls are answered, and the server
    survives in a memory cgroup that could not hold the unbounded case."""
    BUDGET = 64 << 20

    def test_non_reading_bomb_streams_stay_bounded(self):
        srv = Server("pipelines:\n  unz:\n    - type: zstd_decompress\n"
                     "  crc:\n    - type: crc32c\n"
                     "server: { max_response_bytes: %d }\n"
                     "dataplane: { pools: [{size: 8192, count: 1024}, "
                     "{size: 4194304, count: 64}] }\n" % self.BUDGET).start()
        group = None
        calls, done = [], threading.Event()
        try:
            half = pb.ExecuteRequest(
                inline=pb.PipelineSpec(nodes=[pb.NodeSpec(type="zstd_compress",
                                                          params={"level": "19"})]),
                input=pb.Payload(data=bytes((2 << 20) - (32 << 10))))
            bomb = srv.stub.execute(half, timeout=60).output.data * 2  # two frames: 4 MiB
            self.assertLess(len(bomb), 4096)
            root = "/sys/fs/cgroup/memory"
            if os.access(root, os.W_OK) and not SANITIZED:  # ASan's shadow needs far more
                group = tempfile.mkdtemp(prefix="corepipe-it-", dir=root)
                with open(os.path.join(group, "memory.limit_in_bytes"), "w") as f:
                    f.write(str(1 << 30))  # charged from here on: below 1.25 GiB of answers
                with open(os.path.join(group, "cgroup.procs"), "w") as f:
                    f.write(str(srv.proc.pid))
            base = rss_kb(srv.proc.pid) * 1024

            def reqs():
                yield open_named("unz")
                for _ in range(8):
                    yield pb.StreamRequest(frame=pb.Payload(data=bomb))
                    time.sleep(0.05)
                done.wait(120)

            calls = [srv.stub.stream(reqs(), timeout=120) for _ in range(40)]

            def held():
                return metric(srv, "corepipe_grpc_reply_bytes_held")

            self.assertTrue(wait_until(lambda: held() >= self.BUDGET // 2, 60), held())
            # Saturated with unread answers, the server still serves everyone else.
            check = unary(srv.channel, "/grpc.health.v1.Health/Check", hpb.HealthCheckRequest,
                          hpb.HealthCheckResponse)
            for i in range(20):
                self.assertEqual(check(hpb.HealthCheckRequest(), timeout=T).status,
                                 hpb.HealthCheckResponse.SERVING)
                self.assertTrue(check_crc(srv.stub, b"beside the bombs %d" % i))
            # The budget is per front end (server.max_response_bytes): each stops its
            # streams at three quarters of it, plus the answer that crossed the line.
            fes = 2 if MODE == "frontends2" else 1
            self.assertLessEqual(held(), fes * (self.BUDGET * 3 // 4 + (4 << 20)))
            grown = rss_kb(srv.proc.pid) * 1024 - base
            if not SANITIZED:  # ASan keeps freed memory in quarantine
                # Unbounded: 1.25 GiB of answers. Bounded: the budget, the pool pages the
                # bombs touched (64 x 4 MiB) and what gRPC's transport holds per stream.
                self.assertLess(grown, 1 << 30, "RSS grew %d MiB" % (grown >> 20))
            self.assertIsNone(srv.proc.poll())
            self.assertEqual([c.done() for c in calls].count(True), 0,
                             "no stream was refused: they wait")
            for c in calls:
                c.cancel()
            self.assertTrue(wait_until(lambda: held() == 0, 30), held())
            self.assertTrue(check_crc(srv.stub, b"after"))
        finally:
            done.set()
            for c in calls:
                c.cancel()
            code = srv.stop()
            if group is not None:
                os.rmdir(group)  # empty: the server has exited
        self.assertEqual(code, 0, srv.log())

if __name__ == "__main__":
    unittest.main()
