"""Start and stop a real corepiped for integration tests, and typed stubs for its API.

The server is started on 127.0.0.1 port 0 (it picks a free port and logs it in its "serving"
JSON line); every wait is bounded; it is stopped with SIGTERM to the PID we started, and a
clean exit (code 0) is part of what the tests check.
"""
import atexit
import json
import os
import signal
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request

import grpc

import corepipe_pb2 as pb
import health_pb2 as hpb

COREPIPED = os.environ.get("COREPIPED", os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "release", "corepiped"))
START_TIMEOUT_S = 60  # hang guards only: a healthy run never waits them out
# A sanitizer build (make asan / make tsan): slower, and far more memory per allocation.
SANITIZED = any(v in os.path.abspath(COREPIPED).split(os.sep) for v in ("asan", "tsan"))
# The lcore map the suite runs in (CI runs all three): "default" (--workers N: one front end
# plus N worker-only lcores), "one-lcore" (a single lcore: front end, pipeline work and control
# share one reactor, as in a 1-CPU container) or "frontends2" (two front ends plus N workers).
MODE = os.environ.get("CP_TEST_MODE", "default")
MODES = ("default", "one-lcore", "frontends2")
assert MODE in MODES, MODE


def lcore_count(workers=1):
    """Lcores (GetStats.workers entries) a Server(workers=...) has in this MODE."""
    return {"one-lcore": 1, "frontends2": 2 + workers}.get(MODE, 1 + workers)


def lcore_args(workers):
    if MODE == "one-lcore":
        return ["--workers", "0"]
    if MODE == "frontends2":
        return ["--frontends", "2", "--workers", str(workers)]
    return ["--workers", str(workers)]
STOP_TIMEOUT_S = 30
RPC_TIMEOUT_S = 20

# Servers started and not yet closed: a test that fails before its own stop() leaves its
# server here, and the module's process kills it (by PID, SIGKILL) when it exits instead of
# leaving it running after the suite (seen: a one-lcore server still up an hour later).
_LIVE = set()


@atexit.register
def _kill_leftovers():
    for srv in list(_LIVE):
        srv.kill()


class Server:
    """A corepiped process with its stderr collected line by line."""

    def __init__(self, config_yaml="", extra_args=(), workers=1, test_nodes=True):
        self.tmp = tempfile.TemporaryDirectory(prefix="corepipe-it-")
        self.config = os.path.join(self.tmp.name, "corepipe.yaml")
        with open(self.config, "w") as f:
            f.write(config_yaml)
        self.args = [COREPIPED, "--config", self.config, "--grpc-listen", "127.0.0.1:0",
                     *lcore_args(workers), *extra_args]
        self.env = dict(os.environ)
        # A free port for /metrics too, so several servers can run at once.
        self.env.setdefault("COREPIPE_SERVER_METRICS_LISTEN", "127.0.0.1:0")
        if test_nodes:
            self.env["COREPIPE_TEST_NODES"] = "1"  # registers the test_delay node
        self.preexec = None  # run in the child before exec (rlimits, cgroups)
        self.lines = []
        self.port = None
        self.metrics_port = None
        self.proc = None
        self.channel = None
        self._ready = threading.Event()

    def _reader(self):
        # The reader owns the stderr pipe and closes it at EOF (the process's exit).
        with self.proc.stderr:
            for raw in self.proc.stderr:
                self._take(raw)
        self._ready.set()

    def _take(self, raw):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        self.lines.append(line)
        try:
            obj = json.loads(line)
        except ValueError:
            return
        if obj.get("msg") == "serving":
            self.port = int(obj["grpc_port"])
            self.metrics_port = int(obj.get("metrics_port", 0)) or None
            self._ready.set()

    def start(self):
        self.started_at = time.time()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=self.preexec)
        _LIVE.add(self)
        threading.Thread(target=self._reader, daemon=True).start()
        if not self._ready.wait(START_TIMEOUT_S) or self.port is None:
            self.kill()
            raise RuntimeError("corepiped did not start:\n" + self.log())
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = Stubs(self.channel)
        return self

    def stop(self):
        """SIGTERM, wait, and return the exit code (None if it had to be killed); then
        close()."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                return self.proc.returncode if self.proc else None
            # Signal first, close our channel after: calls still open on it must be answered
            # by the server's drain, not cancelled by our side.
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        finally:
            self.close()

    def kill(self):
        """SIGKILL if it still runs, wait; then close()."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.close()

    def close(self):
        """Release what this side holds: the channel and the temporary directory (its config
        file). Every way a Server ends (stop, kill, a start that failed) comes here; again is
        a no-op. The log lines and the exit code stay."""
        if self.proc is None or self.proc.poll() is not None:
            _LIVE.discard(self)
        if self.channel is not None:
            self.channel.close()
        self.tmp.cleanup()

    def metric(self, name, **labels):
        """One sample of this server's /metrics (0 when absent)."""
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                      timeout=RPC_TIMEOUT_S).read().decode()
        want = name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}"
                       if labels else "")
        for line in body.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def log(self):
        return "\n".join(self.lines[-50:])

    def logs_json(self):
        out = []
        for line in self.lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def module_server(module_globals, config_yaml, **kw):
    """setUpModule and tearDownModule for a test module whose tests share one Server, kept in
    the module's global `srv`: started before the first test, stopped after the last, and its
    clean exit (code 0) asserted.

        srv = None
        setUpModule, tearDownModule = module_server(globals(), CONFIG)
    """
    def set_up():
        module_globals["srv"] = Server(config_yaml, **kw).start()

    def tear_down():
        srv = module_globals["srv"]
        code = srv.stop()
        assert code == 0, "corepiped exit code %r\n%s" % (code, srv.log())

    return set_up, tear_down


def unary(channel, path, req_cls, resp_cls):
    return channel.unary_unary(path, request_serializer=req_cls.SerializeToString,
                               response_deserializer=resp_cls.FromString)


class Stubs:
    def __init__(self, ch):
        self.execute = unary(ch, "/corepipe.v1.Pipeline/Execute", pb.ExecuteRequest,
                             pb.ExecuteResponse)
        self.list_node_types = unary(ch, "/corepipe.v1.Admin/ListNodeTypes",
                                     pb.ListNodeTypesRequest, pb.ListNodeTypesResponse)
        self.put = unary(ch, "/corepipe.v1.Admin/PutPipeline", pb.PutPipelineRequest,
                         pb.PipelineInfo)
        self.get = unary(ch, "/corepipe.v1.Admin/GetPipeline", pb.GetPipelineRequest,
                         pb.PipelineInfo)
        self.list = unary(ch, "/corepipe.v1.Admin/ListPipelines", pb.ListPipelinesRequest,
                          pb.ListPipelinesResponse)
        self.delete = unary(ch, "/corepipe.v1.Admin/DeletePipeline", pb.DeletePipelineRequest,
                            pb.DeletePipelineResponse)
        self.health = unary(ch, "/grpc.health.v1.Health/Check", hpb.HealthCheckRequest,
                            hpb.HealthCheckResponse)
        self.stats = unary(ch, "/corepipe.v1.Admin/GetStats", pb.GetStatsRequest, pb.Stats)
        self.stream = ch.stream_stream("/corepipe.v1.Pipeline/ExecuteStream",
                                       request_serializer=pb.StreamRequest.SerializeToString,
                                       response_deserializer=pb.StreamResponse.FromString)


def spec(name, *nodes):
    """spec("p", ("gain", {"db": "6"}), ("crc32c", {}))"""
    return pb.PipelineSpec(name=name, nodes=[pb.NodeSpec(type=t, params=p) for t, p in nodes])


def audio(fmt, samples, rate=16000, channels=1):
    return pb.Payload(audio=pb.AudioBuffer(format=fmt, sample_rate=rate, channels=channels,
                                           samples=samples))


S16 = pb.SAMPLE_FORMAT_S16LE
F32 = pb.SAMPLE_FORMAT_F32LE


def open_named(name):
    """The first request of an ExecuteStream: open pipeline @name."""
    return pb.StreamRequest(open=pb.StreamOpen(name=name))


def frame_s16(samples, rate=16000, channels=1):
    """A stream frame of S16 audio (@samples: ints, interleaved)."""
    return pb.StreamRequest(frame=audio(S16, struct.pack("<%dh" % len(samples), *samples),
                                        rate=rate, channels=channels))


def pool_usage(stats):
    """{pool name: buffers in use} of a GetStats answer."""
    return {p.name: p.in_use for p in stats.pools}


def wait_until(pred, timeout_s=10, step_s=0.02):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step_s)
    return pred()
