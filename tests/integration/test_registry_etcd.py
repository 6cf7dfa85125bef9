"""registry.store: etcd with a real etcd (Debian's etcd-server, started here on free loopback
ports) and three corepiped instances: a Put on one is served by all three with the same
version (etcd's mod_revision); a delete reaches all three; replaces under load on all three:
zero failed calls; a restarted instance catches up; etcd stopped: calls keep
succeeding, Admin writes answer UNAVAILABLE naming etcd, reads answer from the local copy;
etcd back: writes work and all instances converge (their watches resume)."""
import threading
import unittest

import grpc

import corepipe_pb2 as pb
from fleetlib import ETCD, converged, everywhere, put_when_available, start_etcd
from serverlib import Server, spec, wait_until

T = 10
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PREFIX = "/corepipe-test/pipelines/"
CONFIG = """
registry:
  store: etcd
  etcd_endpoint: "127.0.0.1:{port}"
  etcd_prefix: "{prefix}"
pipelines:
  cfg:
    - type: passthrough
"""


@unittest.skipIf(ETCD is None, "etcd-server is not installed (scripts/deps.sh test)")
class EtcdStoreTest(unittest.TestCase):
    def setUp(self):
        self.etcd = start_etcd(self)
        self.servers = []
        self.addCleanup(self.stop_servers)
        for _ in range(3):
            self.servers.append(self.server())

    def server(self):
        return Server(CONFIG.format(port=self.etcd.client_port, prefix=PREFIX)).start()

    def stop_servers(self):
        for s in self.servers:
            s.stop()

    def executes_everywhere(self, name):
        for s in self.servers:
            r = s.stub.execute(pb.ExecuteRequest(name=name, input=pb.Payload(data=b"abc")),
                               timeout=T)
            self.assertEqual(r.output.data, b"abc")

    def test_put_on_one_served_by_all_then_etcd_down_and_back(self):
        a, b, c = self.servers
        info = a.stub.put(pb.PutPipelineRequest(pipeline=spec("shared", ("passthrough", {}))),
                          timeout=T)
        self.assertEqual(converged(self.servers, "shared", info.version), [info.version] * 3)
        self.executes_everywhere("shared")
        # A replace on another instance: one version everywhere, etcd's.
        info2 = b.stub.put(pb.PutPipelineRequest(
            pipeline=spec("shared", ("passthrough", {}), ("passthrough", {}))), timeout=T)
        self.assertGreater(info2.version, info.version)
        self.assertEqual(converged(self.servers, "shared", info2.version), [info2.version] * 3)
        # A delete on the third.
        c.stub.put(pb.PutPipelineRequest(pipeline=spec("gone", ("passthrough", {}))), timeout=T)
        self.assertTrue(wait_until(lambda: all(isinstance(v, int)
                                               for v in everywhere(self.servers, "gone"))))
        c.stub.delete(pb.DeletePipelineRequest(name="gone"), timeout=T)
        self.assertEqual(converged(self.servers, "gone", NOT_FOUND), [NOT_FOUND] * 3)

        # etcd stopped: the data plane serves, reads answer, writes are UNAVAILABLE.
        self.etcd.stop()
        for s in self.servers:
            self.assertTrue(wait_until(lambda: any(
                o.get("msg") == "registry store: etcd unreachable, serving the last registry "
                "known" for o in s.logs_json())), s.log())
        self.executes_everywhere("shared")
        self.assertEqual(everywhere(self.servers, "shared"), [info2.version] * 3)
        with self.assertRaises(grpc.RpcError) as cm:
            a.stub.put(pb.PutPipelineRequest(pipeline=spec("later", ("passthrough", {}))),
                       timeout=T)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("etcd 127.0.0.1:%d" % self.etcd.client_port, cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            b.stub.delete(pb.DeletePipelineRequest(name="shared"), timeout=T)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(everywhere(self.servers, "later"), [NOT_FOUND] * 3)

        # etcd back (same data): writes work, every watch resumes, all converge.
        self.etcd.start()
        later, _ = put_when_available(a, spec("later", ("passthrough", {})))
        self.assertIsNotNone(later)
        self.assertEqual(converged(self.servers, "later", later.version, timeout_s=30),
                         [later.version] * 3)
        self.executes_everywhere("later")
        # The writer has "later" from its own Put, not from its watch: wait for the watch too.
        for s in self.servers:
            self.assertTrue(wait_until(lambda: any(o.get("msg") == "registry store: watching etcd"
                                                   for o in s.logs_json()), timeout_s=30),
                            s.log())

    def test_replace_under_load_on_all_three_zero_failed_calls(self):
        a = self.servers[0]
        a.stub.put(pb.PutPipelineRequest(pipeline=spec("hot", ("passthrough", {}))), timeout=T)
        self.assertTrue(wait_until(lambda: all(isinstance(v, int)
                                               for v in everywhere(self.servers, "hot"))))
        stop = threading.Event()
        lock = threading.Lock()
        counts = {"ok": 0}
        errors = []

        def load(s):
            while not stop.is_set():
                try:
                    r = s.stub.execute(pb.ExecuteRequest(name="hot",
                                                         input=pb.Payload(data=b"abc")),
                                       timeout=T)
                    with lock:
                        if r.output.data == b"abc":
                            counts["ok"] += 1
                        else:
                            errors.append(r.output.data)
                except grpc.RpcError as e:
                    with lock:
                        errors.append((e.code(), e.details()))

        threads = [threading.Thread(target=load, args=(s,), daemon=True) for s in self.servers]
        for t in threads:
            t.start()
        try:
            last = None
            for i in range(20):  # replaces through every instance in turn
                nodes = [("passthrough", {})] * (1 + i % 3)
                last = self.servers[i % 3].stub.put(
                    pb.PutPipelineRequest(pipeline=spec("hot", *nodes)), timeout=T)
            self.assertEqual(converged(self.servers, "hot", last.version), [last.version] * 3)
            start = counts["ok"]
            self.assertTrue(wait_until(lambda: counts["ok"] > start + 30))
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [])
        for s in self.servers:
            got = s.stub.get(pb.GetPipelineRequest(name="hot"), timeout=T)
            self.assertEqual(len(got.spec.nodes), len(last.spec.nodes))

    def test_ids_agree_across_the_fleet(self):
        # New names put at the same time on all three instances: each gets one id, the same
        # on every instance, none shared with another name or with the config file's pipeline.
        names = [f"id{i}" for i in range(9)]
        errors = []

        def put(s, batch):
            for n in batch:
                try:
                    s.stub.put(pb.PutPipelineRequest(pipeline=spec(n, ("passthrough", {}))),
                               timeout=T)
                except grpc.RpcError as e:
                    errors.append((n, e.code(), e.details()))

        threads = [threading.Thread(target=put, args=(s, names[i::3]))
                   for i, s in enumerate(self.servers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        for n in names:
            self.assertTrue(wait_until(lambda: len(set(everywhere(self.servers, n, "id"))) == 1
                                       and isinstance(everywhere(self.servers, n, "id")[0], int)),
                            (n, everywhere(self.servers, n, "id")))
        ids = {n: everywhere(self.servers, n, "id")[0] for n in names}
        cfg = everywhere(self.servers, "cfg", "id")
        self.assertEqual(len(set(cfg)), 1, cfg)  # the same config file everywhere
        self.assertEqual(len(set(ids.values()) | {cfg[0]}), len(names) + 1, (ids, cfg))
        # A replace keeps the id; a delete frees it for the fleet; a restarted instance reads
        # the ids from etcd.
        b, c = self.servers[1], self.servers[2]
        r = b.stub.put(pb.PutPipelineRequest(
            pipeline=spec("id0", ("passthrough", {}), ("passthrough", {}))), timeout=T)
        self.assertEqual(r.id, ids["id0"])
        c.stub.delete(pb.DeletePipelineRequest(name="id4"), timeout=T)
        self.assertEqual(converged(self.servers, "id4", NOT_FOUND, "id"), [NOT_FOUND] * 3)
        new = self.servers[0].stub.put(pb.PutPipelineRequest(
            pipeline=spec("fresh", ("passthrough", {}))), timeout=T)
        self.assertEqual(new.id, ids["id4"])  # the lowest free id in the fleet
        self.assertEqual(c.stop(), 0)
        self.servers[2] = self.server()
        for n in names[:4] + ["fresh"]:
            want = new.id if n == "fresh" else ids[n]
            self.assertEqual(converged(self.servers, n, want, "id"), [want] * 3, n)

    def test_restarted_instance_catches_up(self):
        a, b, c = self.servers
        self.assertEqual(c.stop(), 0)
        info = a.stub.put(pb.PutPipelineRequest(
            pipeline=spec("while_down", ("passthrough", {}))), timeout=T)
        self.servers[2] = self.server()
        self.assertEqual(converged(self.servers, "while_down", info.version), [info.version] * 3)
        ready = [o for o in self.servers[2].logs_json()
                 if o.get("msg") == "registry store ready"]
        self.assertEqual(ready[0]["pipelines"], 1)

if __name__ == "__main__":
    unittest.main()
