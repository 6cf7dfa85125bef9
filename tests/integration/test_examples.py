"""examples/ against a real corepiped, each run as its README says: the Python examples
(process a file, a live source streamed in real time, pipeline management) with
PYTHONPATH=build/python/lib, the Node.js example (@grpc/grpc-js, npm ci by scripts/deps.sh) and
the C example on the gRPC C core (build/<variant>/examples/execute)."""
import math
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import wave

from serverlib import COREPIPED, Server

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EX = os.path.join(ROOT, "examples")
C_EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(COREPIPED)), "examples", "execute")
CONFIG = """
pipelines:
  crc32c:
    - type: crc32c
  speech16k:
    - type: convert
      params: { format: f32le }
    - type: channels
      params: { count: "1" }
    - type: resample
      params: { rate: "16000", quality: high }
    - type: vad
      params: { threshold_db: "-45", hangover_ms: "200", mode: annotate }
"""


class ExamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(CONFIG).start()
        cls.env = dict(os.environ, COREPIPE_TARGET=f"127.0.0.1:{cls.srv.port}",
                       PYTHONPATH=os.path.join(ROOT, "build", "python", "lib"))
        cls.tmp = tempfile.TemporaryDirectory(prefix="corepipe-ex-")

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        cls.tmp.cleanup()
        assert code == 0, cls.srv.log()

    def run_ex(self, *cmd):
        p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, env=self.env,
                           cwd=ROOT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def test_process_file_bytes_and_wav(self):
        src = os.path.join(self.tmp.name, "t.txt")
        with open(src, "wb") as f:
            f.write(b"123456789")
        out = self.run_ex("/usr/bin/python3", "examples/python/process_file.py", "crc32c", src)
        self.assertIn("crc32c: e3069283", out)
        wav, dst = os.path.join(self.tmp.name, "in.wav"), os.path.join(self.tmp.name, "out.wav")
        with wave.open(wav, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(48000)
            w.writeframes(b"".join(struct.pack("<hh", v, v) for v in (
                int(9000 * math.sin(2 * math.pi * 300 * i / 48000)) for i in range(24000))))
        out = self.run_ex("/usr/bin/python3", "examples/python/process_file.py", "speech16k", wav,
                          dst)
        self.assertIn("vad.speech: ", out)
        self.assertIn("output: f32le 16000 Hz 1 ch", out)
        with open(dst, "rb") as f:
            hdr = f.read(36)
        self.assertEqual(hdr[:4] + hdr[8:12], b"RIFFWAVE")
        self.assertEqual(struct.unpack_from("<HHI", hdr, 20), (3, 1, 16000))

    def test_stream_live_source_in_real_time(self):
        out = self.run_ex("/usr/bin/python3", "examples/python/stream_live.py", "--seconds", "0.6")
        lines = out.splitlines()
        self.assertEqual([l.split()[2] for l in lines],
                         ["speech=false", "speech=true", "speech=false"], out)
        self.assertEqual([l.split()[0] for l in lines], ["0.00", "0.20", "0.40"])

    def test_manage_pipelines(self):
        out = self.run_ex("/usr/bin/python3", "examples/python/manage_pipelines.py")
        self.assertIn("crc32c of 123456789: e3069283", out)
        self.assertRegex(out, r"put example_checksum: id (\d+) version \d+\n")
        self.assertIn("deleted example_checksum: get says NOT_FOUND", out)

    def test_node_example(self):
        self.assertIsNotNone(shutil.which("node"), "node is not installed (make deps)")
        self.assertTrue(os.path.isdir(os.path.join(EX, "node", "node_modules", "@grpc")),
                        "npm packages missing: run make deps (npm ci in examples/node)")
        out = self.run_ex("node", "examples/node/client.js")
        self.assertIn("pipelines: crc32c speech16k", out)
        self.assertIn("crc32c: e3069283", out)
        self.assertEqual(len([l for l in out.splitlines() if l.startswith("stream seq")]), 4)
        self.assertIn("meter.rms_dbfs", out)

    def test_c_example(self):
        out = self.run_ex(C_EXAMPLE, f"127.0.0.1:{self.srv.port}")
        self.assertIn("crc32c: e3069283", out)
        p = subprocess.run([C_EXAMPLE, f"127.0.0.1:{self.srv.port}", "nope"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("status 5", p.stderr)


if __name__ == "__main__":
    unittest.main()
