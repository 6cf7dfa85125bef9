"""The Python package (clients/python) installed into fresh virtual environments (pip install
./clients/python, and the wheel `make` builds), with Debian's grpcio and protobuf through
--system-site-packages and no network: every API against a real corepiped, run by the venv's
own interpreter. Retries are checked against a stand-in server (grpcio, in this process) that
refuses with grpc-retry-pushback-ms. The README's example is run as written."""
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from concurrent import futures

import grpc

from serverlib import COREPIPED, Server, lcore_count

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WHEEL_DIR = os.path.join(ROOT, "build", "python", "dist")
CONFIG = """
pipelines:
  crc:
    - type: crc32c
  crc32c:
    - type: crc32c
  passthrough:
    - type: passthrough
  vad:
    - type: convert
      params: { format: f32le }
    - type: vad
      params: { threshold_db: "-40", hangover_ms: "0", mode: annotate }
"""

API_SCRIPT = r'''
import json, math, struct, sys, time
import corepipe
from corepipe.v1 import corepipe_pb2, corepipe_pb2_grpc  # the generated stubs are public

out = {}
c = corepipe.Client(sys.argv[1], timeout=10)
out["file"] = corepipe.__file__
out["health"] = c.health()
r = c.execute("crc", b"123456789")
out["crc"] = r.annotations
out["bytes_out"] = r.output.decode()
r = c.execute([("gain", {"db": 0}), "crc32c"],
              corepipe.Audio(struct.pack("<4h", 1, 2, 3, 4), 16000, 1, "s16le"))
out["inline_audio"] = [r.output.sample_rate, r.output.format, len(r.output.samples),
                       "crc32c" in r.annotations]
try:
    c.execute("nope", b"x")
except corepipe.CorepipeError as e:
    out["error"] = [e.code.name, "nope" in e.details]
info = c.put_pipeline("py_p", [("gain", {"db": "3"}), corepipe.Node("crc32c")])
out["put"] = [info.name, [n.type for n in info.nodes], info.nodes[0].params]
out["get_version"] = c.get_pipeline("py_p").version == info.version
out["list"] = sorted(p.name for p in c.list_pipelines())
c.delete_pipeline("py_p")
out["after_delete"] = "py_p" in [p.name for p in c.list_pipelines()]
out["node_types"] = "resample" in [t.type for t in c.list_node_types()]
st = c.stats()
out["stats"] = [len(st.workers), any(p.name == "descriptors" for p in st.pools)]
out["reload"] = c.reload_config().path != ""
# A microphone-like source: 20 ms frames of silence, then a tone, sent in real time.
rate = 16000
def frames():
    for i in range(10):
        amp = 0.0 if i < 5 else 0.5
        n = rate // 50
        yield corepipe.Audio(b"".join(struct.pack("<h", int(amp * 32767 * math.sin(
            2 * math.pi * 440 * k / rate))) for k in range(n)), rate)
t0 = time.monotonic()
res = list(c.stream("vad", frames(), realtime=True))
out["stream_elapsed"] = time.monotonic() - t0
out["stream"] = [[r.seq, r.final, r.annotations.get("vad.speech")] for r in res]
w = corepipe.Audio(b"\x01\x00\x02\x00", 8000)
w.to_wav(sys.argv[2])
back = corepipe.Audio.from_wav(sys.argv[2])
out["wav"] = [back.sample_rate, back.samples == w.samples]
c.close()
print(json.dumps(out))
'''

RETRY_SCRIPT = r'''
import json, sys, time
import corepipe
c = corepipe.Client(sys.argv[1], retries=int(sys.argv[2]))
t0 = time.monotonic()
try:
    r = c.execute("x", b"hello")
    out = {"ok": r.annotations}
except corepipe.CorepipeError as e:
    out = {"error": e.code.name, "pushback_ms": e.pushback_ms}
out["elapsed"] = time.monotonic() - t0
print(json.dumps(out))
'''


def make_venv(d):
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", d], check=True,
                   timeout=120, capture_output=True)
    return os.path.join(d, "bin", "python")


class Refuser:
    """A stand-in Execute that refuses the first `refusals` calls with RESOURCE_EXHAUSTED and
    grpc-retry-pushback-ms, then answers."""

    def __init__(self, refusals, pushback_ms):
        import corepipe_pb2 as pb  # build/gen/python, Debian's protobuf
        self.pb, self.refusals, self.pushback_ms, self.calls = pb, refusals, pushback_ms, []

    def execute(self, request, context):
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.refusals:
            context.set_trailing_metadata((("grpc-retry-pushback-ms", str(self.pushback_ms)),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
        return self.pb.ExecuteResponse(annotations={"attempt": str(len(self.calls))})

    def start(self):
        h = grpc.method_handlers_generic_handler("corepipe.v1.Pipeline", {
            "Execute": grpc.unary_unary_rpc_method_handler(
                self.execute, request_deserializer=self.pb.ExecuteRequest.FromString,
                response_serializer=self.pb.ExecuteResponse.SerializeToString)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((h,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        return self


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="corepipe-py-")
        cls.py = make_venv(os.path.join(cls.tmp.name, "venv"))
        p = subprocess.run([cls.py, "-m", "pip", "install", "--no-input",
                            os.path.join(ROOT, "clients", "python")], capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        cls.srv = Server(CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        cls.tmp.cleanup()
        assert code == 0, cls.srv.log()

    def run_py(self, py, script, *args):
        p = subprocess.run([py, "-c", script, *args], capture_output=True, text=True,
                           timeout=120, cwd=self.tmp.name)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return json.loads(p.stdout)

    def test_every_api(self):
        out = self.run_py(self.py, API_SCRIPT, f"127.0.0.1:{self.srv.port}",
                          os.path.join(self.tmp.name, "w.wav"))
        self.assertTrue(out["file"].startswith(self.tmp.name), out["file"])  # the venv's copy
        self.assertEqual(out["health"], "SERVING")
        self.assertEqual(out["crc"], {"crc32c": "e3069283"})
        self.assertEqual(out["bytes_out"], "123456789")
        self.assertEqual(out["inline_audio"], [16000, "s16le", 8, True])
        self.assertEqual(out["error"], ["NOT_FOUND", True])
        self.assertEqual(out["put"], ["py_p", ["gain", "crc32c"], {"db": "3"}])
        self.assertTrue(out["get_version"])
        self.assertIn("py_p", out["list"])
        self.assertFalse(out["after_delete"])
        self.assertTrue(out["node_types"])
        self.assertEqual(out["stats"], [lcore_count(), True])
        self.assertTrue(out["reload"])
        s = out["stream"]
        self.assertEqual([x[0] for x in s], list(range(11)))
        self.assertEqual([x[1] for x in s], [False] * 10 + [True])
        self.assertEqual([x[2] for x in s[:10]], ["false"] * 5 + ["true"] * 5)
        # Real-time pacing: 10 frames of 20 ms cannot all be sent before 9 x 20 ms.
        self.assertGreaterEqual(out["stream_elapsed"], 0.18)
        self.assertEqual(out["wav"], [8000, True])

    def test_retries_honour_pushback(self):
        ref = Refuser(refusals=2, pushback_ms=150).start()
        try:
            out = self.run_py(self.py, RETRY_SCRIPT, f"127.0.0.1:{ref.port}", "3")
            self.assertEqual(out["ok"], {"attempt": "3"})
            self.assertEqual(len(ref.calls), 3)
            # Each retry waited the server's pushback (the client's own sleep: a lower bound).
            gaps = [b - a for a, b in zip(ref.calls, ref.calls[1:])]
            self.assertTrue(all(g >= 0.15 for g in gaps), gaps)
        finally:
            ref.server.stop(None)
        ref = Refuser(refusals=5, pushback_ms=10).start()
        try:
            out = self.run_py(self.py, RETRY_SCRIPT, f"127.0.0.1:{ref.port}", "1")
            self.assertEqual(out["error"], "RESOURCE_EXHAUSTED")
            self.assertEqual(out["pushback_ms"], 10)
            self.assertEqual(len(ref.calls), 2)  # one try and one retry, then the error
        finally:
            ref.server.stop(None)

    def test_wheel_from_make_installs(self):
        wheels = [w for w in os.listdir(WHEEL_DIR) if w.endswith(".whl")]
        self.assertEqual(len(wheels), 1, wheels)
        py = make_venv(os.path.join(self.tmp.name, "venv-wheel"))
        p = subprocess.run([py, "-m", "pip", "install", "--no-input",
                            os.path.join(WHEEL_DIR, wheels[0])], capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = self.run_py(py, "import corepipe, json, sys; print(json.dumps(corepipe.Client("
                          "sys.argv[1]).execute('crc', b'123456789').annotations))",
                          f"127.0.0.1:{self.srv.port}")
        self.assertEqual(out, {"crc32c": "e3069283"})

    def test_readme_example_verbatim(self):
        """The README's Python block, as written, after `make` (PYTHONPATH=build/python/lib)."""
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
        py_blocks = [b for b in blocks if "import corepipe" in b]
        self.assertEqual(len(py_blocks), 1, "one shell block runs the Python client")
        env = dict(os.environ, COREPIPE_TARGET=f"127.0.0.1:{self.srv.port}",
                   PATH="/usr/bin:" + os.environ.get("PATH", ""))
        env.pop("PYTHONPATH", None)
        p = subprocess.run(["bash", "-e", "-c", py_blocks[0]], capture_output=True, text=True,
                           timeout=60, cwd=ROOT, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("{'crc32c': 'e3069283'}", p.stdout)


if __name__ == "__main__":
    unittest.main()
