"""Server reflection with a client nobody here wrote: grpc-reflection-js from npm (it speaks
grpc.reflection.v1alpha), run by node (tests/integration/node/reflect.js): list the services,
describe the Pipeline and Admin services and a message, an unknown symbol, and an Execute call
built from the fetched descriptors alone. scripts/deps.sh installs the npm packages (npm ci)."""
import json
import os
import shutil
import subprocess
import unittest

from serverlib import Server

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")


class ReflectionJsTest(unittest.TestCase):
    def test_grpc_reflection_js(self):
        self.assertIsNotNone(shutil.which("node"), "node is not installed (make deps)")
        self.assertTrue(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "grpc-reflection-js")),
                        "npm packages missing: run make deps (npm ci in tests/integration/node)")
        srv = Server("pipelines:\n  crc:\n    - type: crc32c\n").start()
        try:
            p = subprocess.run(["node", os.path.join(NODE_DIR, "reflect.js"),
                                f"127.0.0.1:{srv.port}", "crc"], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = json.loads(p.stdout)
        finally:
            self.assertEqual(srv.stop(), 0)
        self.assertEqual(out["services"], [
            "corepipe.v1.Admin", "corepipe.v1.Pipeline", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"])
        self.assertEqual(out["pipeline_methods"], ["Execute", "ExecuteStream"])
        self.assertEqual(out["execute_stream"], {"request": ".corepipe.v1.StreamRequest",
                                                 "requestStream": True, "responseStream": True})
        self.assertEqual(out["admin_methods"], [
            "DeletePipeline", "GetPipeline", "GetStats", "ListNodeTypes", "ListPipelines",
            "PutPipeline", "ReloadConfig"])
        self.assertIn("workers", out["stats_fields"])
        self.assertNotEqual(out["unknown"], "found?")  # the client rejected: NOT_FOUND
        # protobufjs built from raw descriptors shows a map as its entries.
        self.assertEqual(out["crc"], [{"key": "crc32c", "value": "e3069283"}])


if __name__ == "__main__":
    unittest.main()
