"""registry.store: file. Admin changes survive a restart with their ids and versions; a torn or
corrupt state file, or one that cannot be written, refuses start with a message naming it."""
import os
import tempfile
import unittest
import urllib.request

import grpc

import corepipe_pb2 as pb
from serverlib import Server, spec

T = 10

CONFIG = """
registry:
  store: file
  state_file: "{path}"
pipelines:
  cfg:
    - type: passthrough
"""


class FileStoreTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="corepipe-store-")
        self.path = os.path.join(self.dir.name, "registry.state")

    def tearDown(self):
        self.dir.cleanup()

    def server(self, path=None):
        return Server(CONFIG.format(path=path or self.path))

    def refused(self, srv):
        """Start @srv expecting it to refuse: its exit code and log."""
        with self.assertRaises(RuntimeError):
            srv.start()
        code = srv.proc.wait(30)
        return code, "\n".join(srv.lines)

    def test_put_restart_keeps_id_version_and_deletes(self):
        srv = self.server().start()
        try:
            a1 = srv.stub.put(pb.PutPipelineRequest(pipeline=spec("api_a", ("gain", {"db": "1"}))),
                              timeout=T)
            b = srv.stub.put(pb.PutPipelineRequest(pipeline=spec("api_b", ("passthrough", {}))),
                             timeout=T)
            a2 = srv.stub.put(pb.PutPipelineRequest(pipeline=spec("api_a", ("passthrough", {}))),
                              timeout=T)
            self.assertEqual(a2.id, a1.id)
            self.assertGreater(a2.version, a1.version)
            srv.stub.delete(pb.DeletePipelineRequest(name="api_b"), timeout=T)
            with self.assertRaises(grpc.RpcError) as cm:
                srv.stub.delete(pb.DeletePipelineRequest(name="api_b"), timeout=T)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertTrue(os.path.exists(self.path))
            # The start's write, three puts, one delete; the failed delete wrote nothing.
            with urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}/metrics",
                                        timeout=T) as r:
                text = r.read().decode()
            self.assertIn('corepipe_registry_store_writes_total{result="ok"} 5\n', text)
            self.assertIn('corepipe_registry_store_writes_total{result="error"} 0\n', text)
        finally:
            self.assertEqual(srv.stop(), 0)

        srv = self.server().start()
        try:
            got = srv.stub.get(pb.GetPipelineRequest(name="api_a"), timeout=T)
            self.assertEqual((got.id, got.version), (a2.id, a2.version))
            self.assertEqual(got.spec.nodes[0].type, "passthrough")
            with self.assertRaises(grpc.RpcError) as cm:
                srv.stub.get(pb.GetPipelineRequest(name="api_b"), timeout=T)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertNotEqual(b.id, 0)
            r = srv.stub.execute(pb.ExecuteRequest(name="api_a", input=pb.Payload(data=b"xyz")),
                                 timeout=T)
            self.assertEqual(r.output.data, b"xyz")
            srv.stub.get(pb.GetPipelineRequest(name="cfg"), timeout=T)
            # Versions go on after the restored ones.
            a3 = srv.stub.put(pb.PutPipelineRequest(pipeline=spec("api_a", ("passthrough", {}))),
                              timeout=T)
            self.assertEqual(a3.id, a2.id)
            self.assertGreater(a3.version, a2.version)
            logs = srv.logs_json()
            ready = [o for o in logs if o.get("msg") == "registry store ready"]
            self.assertEqual(len(ready), 1)
            self.assertEqual(ready[0]["pipelines"], 1)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_corrupt_state_file_refuses_start(self):
        srv = self.server().start()
        try:
            srv.stub.put(pb.PutPipelineRequest(pipeline=spec("api_a", ("passthrough", {}))),
                         timeout=T)
        finally:
            self.assertEqual(srv.stop(), 0)
        with open(self.path, "rb") as f:
            good = f.read()
        for bad, what in ((good[:-3], "torn"), (good[:-1] + bytes([good[-1] ^ 1]), "corrupt"),
                          (b"", "not a corepipe state file")):
            with open(self.path, "wb") as f:
                f.write(bad)
            code, log = self.refused(self.server())
            self.assertEqual(code, 2, log)
            self.assertIn(self.path, log)
            self.assertIn(what, log)
            self.assertIn("refusing to start", log)
            with open(self.path, "rb") as f:
                self.assertEqual(f.read(), bad)  # left for the operator

    def test_unwritable_state_file_refuses_start(self):
        path = os.path.join(self.dir.name, "missing-dir", "registry.state")
        code, log = self.refused(self.server(path))
        self.assertEqual(code, 2, log)
        self.assertIn(path, log)
        self.assertIn("cannot write", log)

    def test_file_store_needs_a_path(self):
        code, log = self.refused(Server("registry:\n  store: file\n"))
        self.assertEqual(code, 2, log)
        self.assertIn("registry.state_file", log)


if __name__ == "__main__":
    unittest.main()
