"""Client-side load balancing over three corepiped instances with the tree's service config
(clients/service-config.json: round_robin, grpc.health.v1 health checking, retries of
UNAVAILABLE and RESOURCE_EXHAUSTED): every instance serves; kill -9 of one under load: zero
failed calls as the client sees them; the Python package carries the same config."""
import json
import os
import subprocess
import sys
import unittest

import corepipe_pb2 as pb
from fleetlib import ROOT, SERVICE_CONFIG_PATH, FleetLoad, fleet_channel
from serverlib import Server, wait_until

T = 10
CALLS_PER_PHASE = 300
PY_LIB = os.path.join(ROOT, "build", "python", "lib")

CONFIG = """
pipelines:
  p:
    - type: passthrough
"""


class FleetLoadBalancingTest(unittest.TestCase):
    def setUp(self):
        self.servers = [Server(CONFIG).start() for _ in range(3)]

    def tearDown(self):
        for s in self.servers:
            s.stop()

    def answered(self, s):
        return s.stub.stats(pb.GetStatsRequest(), timeout=T).answered

    def test_kill_9_one_of_three_under_load_zero_failed_calls(self):
        with FleetLoad(fleet_channel([s.port for s in self.servers])) as load:
            self.assertTrue(load.more(CALLS_PER_PHASE), load.errors)
            # round_robin: every instance serves (GetStats counts its own call too).
            self.assertTrue(wait_until(lambda: all(self.answered(s) > 10
                                                   for s in self.servers)),
                            [self.answered(s) for s in self.servers])
            victim = self.servers[1]
            victim.kill()  # SIGKILL: no drain, connections reset
            self.assertEqual(victim.proc.returncode, -9)
            self.assertTrue(load.more(CALLS_PER_PHASE), load.errors)
            before = [self.answered(s) for s in (self.servers[0], self.servers[2])]
            self.assertTrue(load.more(CALLS_PER_PHASE), load.errors)
            after = [self.answered(s) for s in (self.servers[0], self.servers[2])]
            # The two left share the load.
            self.assertTrue(all(a > b + 10 for a, b in zip(after, before)), (before, after))
        self.assertEqual(load.errors, [])

    def test_python_package_carries_the_same_service_config(self):
        # In a child interpreter: the package registers corepipe.proto in its own process.
        script = (
            "import json, sys, corepipe\n"
            "print(json.dumps(corepipe.SERVICE_CONFIG))\n"
            "t = corepipe.fleet_target(sys.argv[1:])\n"
            "with corepipe.Client(t, fleet=True) as c:\n"
            "    for i in range(30):\n"
            "        assert c.execute('p', b'x%d' % i).output == b'x%d' % i\n")
        env = dict(os.environ, PYTHONPATH=PY_LIB)
        r = subprocess.run([sys.executable, "-c", script,
                            *[f"127.0.0.1:{s.port}" for s in self.servers]],
                           env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(SERVICE_CONFIG_PATH) as f:
            self.assertEqual(json.loads(r.stdout), json.load(f))
        # round_robin: the 30 calls went to all three.
        self.assertTrue(wait_until(lambda: all(self.answered(s) > 1 for s in self.servers)))

if __name__ == "__main__":
    unittest.main()
