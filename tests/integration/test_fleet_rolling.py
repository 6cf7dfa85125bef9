"""The whole fleet: three corepiped instances sharing one registry in a real etcd, clients
with the tree's service config (round_robin, health checking, retries) over the three, and a
rolling hitless restart of all three (each taken over by a successor on its own takeover
socket) under load: zero failed calls, zero CANCELLED; the successors read the registry from
etcd and serve a pipeline put before the restart."""
import os
import tempfile
import unittest

import grpc

import corepipe_pb2 as pb
from fleetlib import ETCD, FleetLoad, fleet_channel, start_etcd
from serverlib import Server, spec, wait_until

T = 10
PREFIX = "/corepipe-rolling/pipelines/"
CALLS_PER_PHASE = 150
CONFIG = """
server:
  takeover_socket: "{sock}"
  shutdown_delay_ms: 1000
registry:
  store: etcd
  etcd_endpoint: "127.0.0.1:{port}"
  etcd_prefix: "{prefix}"
"""


@unittest.skipIf(ETCD is None, "etcd-server is not installed (scripts/deps.sh test)")
class RollingRestartTest(unittest.TestCase):
    def setUp(self):
        self.etcd = start_etcd(self)
        self.dir = tempfile.TemporaryDirectory(prefix="corepipe-rolling-")
        self.addCleanup(self.dir.cleanup)
        self.all = []
        self.addCleanup(self.stop_all)

    def stop_all(self):
        for s in self.all:
            s.stop()

    def server(self, i):
        sock = os.path.join(self.dir.name, f"takeover{i}.sock")
        s = Server(CONFIG.format(sock=sock, port=self.etcd.client_port, prefix=PREFIX))
        self.all.append(s)
        return s.start()

    def test_rolling_hitless_restart_of_three_under_load(self):
        live = [self.server(i) for i in range(3)]
        ports = [s.port for s in live]
        live[0].stub.put(pb.PutPipelineRequest(pipeline=spec("p", ("passthrough", {}))),
                         timeout=T)
        self.assertTrue(wait_until(lambda: all(self.has(s, "p") for s in live)))
        with FleetLoad(fleet_channel(ports), wait_for_ready=True) as load:
            self.assertTrue(load.more(CALLS_PER_PHASE), load.errors)
            for i in range(3):
                old = live[i]
                new = self.server(i)  # takes old's sockets over
                self.assertEqual(new.port, ports[i])
                self.assertTrue(self.has(new, "p"))  # read from etcd at its start
                self.assertEqual(old.proc.wait(60), 0, old.log())
                live[i] = new
                self.assertTrue(load.more(CALLS_PER_PHASE), load.errors)
        self.assertEqual(load.errors, [])
        for s in live:
            self.assertGreater(s.stub.stats(pb.GetStatsRequest(), timeout=T).answered, 1)

    def has(self, s, name):
        try:
            s.stub.get(pb.GetPipelineRequest(name=name), timeout=T)
            return True
        except grpc.RpcError:
            return False


if __name__ == "__main__":
    unittest.main()
