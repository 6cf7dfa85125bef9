"""registry.store: etcd against a real three-member etcd cluster (Debian's etcd-server, each
member on loopback with its own ports and data directory, started here and stopped by PID) and
two corepiped instances given all three endpoints:
  - a Put on either instance is served by both, at one version and one id;
  - the member an instance is connected to, which is also the leader, stopped: Admin writes
    work again once the other two have elected a leader (meanwhile a write may answer
    UNAVAILABLE naming etcd, never anything else);
  - two members of three down (no quorum): writes answer UNAVAILABLE naming etcd; reads and
    Execute answer from the local copy;
  - the members back: writes work and both instances agree on every version and id.
And with one etcd and etcdctl: a pipeline key deleted by hand (etcdctl del <prefix><name>)
leaves no id held: the instances free its "#id/<id>" key (once, however many race), at once
when they watch the delete and at start for a delete made while none ran; a corepipe Delete
frees its id in its own Txn (nothing for them to do)."""
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
import urllib.request

import grpc

import corepipe_pb2 as pb
from fleetlib import ETCD, etcd_healthy, free_port, put_when_available, start_etcd
from serverlib import Server, spec, wait_until

T = 10
T_WRITE = 30  # a write with no quorum: each endpoint tried once, each call bounded at 3 s
ETCDCTL = shutil.which("etcdctl")
PREFIX = "/corepipe-cluster/pipelines/"
CONFIG = """
registry:
  store: etcd
  etcd_endpoint: "{endpoints}"
  etcd_prefix: "{prefix}"
pipelines:
  cfg:
    - type: passthrough
"""
FREED = "registry store: freed the id of a pipeline deleted outside corepipe"


def etcdctl(endpoints, *args, check=True):
    return subprocess.run([ETCDCTL, "--endpoints", ",".join(endpoints), "--dial-timeout", "2s",
                           "--command-timeout", "5s", *args], capture_output=True, timeout=60,
                          check=check, env=dict(os.environ, ETCDCTL_API="3")).stdout.decode()


class Cluster:
    """N etcd members m0..m<N-1> on free loopback ports, data under one temporary directory
    (kept over a member's stop and start)."""

    def __init__(self, n=3):
        self.dir = tempfile.TemporaryDirectory(prefix="corepipe-etcd-cluster-")
        self.n = n
        self.client = [free_port() for _ in range(n)]
        self.peer = [free_port() for _ in range(n)]
        self.token = "corepipe-test-%d" % self.client[0]
        self.procs = [None] * n
        self.logs = [None] * n

    def endpoint(self, i):
        return f"127.0.0.1:{self.client[i]}"

    def spawn(self, i):
        c, p = f"http://127.0.0.1:{self.client[i]}", f"http://127.0.0.1:{self.peer[i]}"
        cluster = ",".join(f"m{k}=http://127.0.0.1:{self.peer[k]}" for k in range(self.n))
        self.logs[i] = open(os.path.join(self.dir.name, f"m{i}.log"), "ab")
        self.procs[i] = subprocess.Popen(
            [ETCD, "--name", f"m{i}", "--data-dir", os.path.join(self.dir.name, f"m{i}"),
             "--listen-client-urls", c, "--advertise-client-urls", c,
             "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
             "--initial-cluster", cluster, "--initial-cluster-token", self.token,
             "--initial-cluster-state", "new"],
            stdin=subprocess.DEVNULL, stdout=self.logs[i], stderr=self.logs[i])

    def healthy(self, i):
        """Member @i answers /health true: it is up and the cluster has a leader."""
        return etcd_healthy(self.client[i])

    def start(self, *members):
        """Start @members (all: none given) and wait until every running one is healthy."""
        for i in members or range(self.n):
            self.spawn(i)
        running = [i for i in range(self.n) if self.procs[i] is not None]
        if not wait_until(lambda: all(self.healthy(i) for i in running), timeout_s=60):
            raise RuntimeError("etcd cluster not healthy: " + self.tail())
        return self

    def stop(self, i):
        p = self.procs[i]
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        self.logs[i].close()
        self.procs[i] = None

    def stop_all(self):
        for i in range(self.n):
            self.stop(i)

    def leader(self):
        """The index of the member that is leader (etcdctl endpoint status), or None."""
        up = [self.endpoint(i) for i in range(self.n) if self.procs[i] is not None]
        out = etcdctl(up, "endpoint", "status", "-w", "json", check=False)
        try:
            st = json.loads(out)
        except ValueError:
            return None
        for s in st:
            status = s["Status"]
            if status["leader"] != 0 and status["leader"] == status["header"]["member_id"]:
                return [self.endpoint(i) for i in range(self.n)].index(s["Endpoint"])
        return None

    def tail(self):
        out = []
        for i in range(self.n):
            path = os.path.join(self.dir.name, f"m{i}.log")
            if os.path.exists(path):
                with open(path, "rb") as f:
                    out.append(f"m{i}: " + f.read()[-1500:].decode("utf-8", "replace"))
        return "\n".join(out)


def infos(servers, name):
    """(version, id) of @name on each of @servers, or the status code."""
    out = []
    for s in servers:
        try:
            r = s.stub.get(pb.GetPipelineRequest(name=name), timeout=T)
            out.append((r.version, r.id))
        except grpc.RpcError as e:
            out.append(e.code())
    return out


def agree(servers, name):
    """@name at one version and one id on every one of @servers."""
    got = infos(servers, name)
    return isinstance(got[0], tuple) and got == [got[0]] * len(servers)


@unittest.skipIf(ETCD is None, "etcd-server is not installed (scripts/deps.sh test)")
@unittest.skipIf(ETCDCTL is None, "etcd-client is not installed (scripts/deps.sh test)")
class EtcdClusterTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster()
        self.addCleanup(self.cluster.dir.cleanup)
        self.addCleanup(self.cluster.stop_all)
        self.cluster.start()
        self.servers = []
        self.addCleanup(lambda: [s.stop() for s in self.servers])

    def server(self, order):
        eps = ",".join(self.cluster.endpoint(i) for i in order)
        s = Server(CONFIG.format(endpoints=eps, prefix=PREFIX)).start()
        self.servers.append(s)
        return s

    def put(self, s, name, n=1, timeout=T):
        return s.stub.put(pb.PutPipelineRequest(
            pipeline=spec(name, *[("passthrough", {})] * n)), timeout=timeout)

    def put_after_outage(self, s, name, n=1):
        """A Put that may find no quorum, retried until it works: UNAVAILABLE naming etcd is
        the only other answer allowed (put_when_available raises on any other)."""
        info, refusals = put_when_available(s, spec(name, *[("passthrough", {})] * n),
                                            timeout_s=90)
        self.assertIsNotNone(info, s.log())
        for d in refusals:
            self.assertIn("registry store: etcd", d)
        return info

    def serves(self, s, name):
        r = s.stub.execute(pb.ExecuteRequest(name=name, input=pb.Payload(data=b"abc")),
                           timeout=T)
        self.assertEqual(r.output.data, b"abc")

    def test_member_and_leader_loss_no_quorum_and_recovery(self):
        c = self.cluster
        self.assertTrue(wait_until(lambda: c.leader() is not None, timeout_s=30), c.tail())
        lead = c.leader()
        other = [i for i in range(3) if i != lead]
        # a is connected to the leader (its first endpoint), b to another member.
        a = self.server([lead] + other)
        b = self.server(other + [lead])
        for s, want in ((a, lead), (b, other[0])):
            read = [o for o in s.logs_json() if o.get("msg") == "registry store: etcd read"]
            self.assertEqual(read[0]["endpoint"], c.endpoint(want), s.log())

        # Puts on either instance reach both.
        self.put(a, "p1")
        self.put(b, "p2")
        for n in ("p1", "p2", "cfg"):
            self.assertTrue(wait_until(lambda: agree(self.servers, n)),
                            (n, infos(self.servers, n)))
        before = {n: infos(self.servers, n)[0] for n in ("p1", "p2")}
        self.assertNotEqual(before["p1"][1], before["p2"][1])

        # The leader, a's member, stopped: the other two elect one; writes through a and b
        # work again (UNAVAILABLE naming etcd meanwhile, nothing else).
        c.stop(lead)
        self.put_after_outage(a, "p1", 2)
        self.put_after_outage(b, "p3")
        self.assertIsNotNone(c.leader(), c.tail())
        for n in ("p1", "p3"):
            self.assertTrue(wait_until(lambda: agree(self.servers, n), timeout_s=30),
                            (n, infos(self.servers, n)))
        self.assertGreater(infos([a], "p1")[0][0], before["p1"][0])
        self.assertEqual(infos([a], "p1")[0][1], before["p1"][1])  # a replace keeps the id
        self.assertTrue(any(o.get("msg") == "registry store: etcd endpoint failed, using the "
                            "next one" and o.get("failed") == c.endpoint(lead)
                            for o in a.logs_json()), a.log())

        # Two of three down: no quorum. Writes answer UNAVAILABLE naming etcd; reads and
        # Execute answer from the local copy.
        c.stop(other[0])
        now = {n: infos(self.servers, n) for n in ("p1", "p2", "p3")}
        for s, name in ((a, "q1"), (b, "q2")):
            with self.assertRaises(grpc.RpcError) as cm:
                self.put(s, name, timeout=T_WRITE)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("registry store: etcd", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            b.stub.delete(pb.DeletePipelineRequest(name="p2"), timeout=T_WRITE)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("registry store: etcd", cm.exception.details())
        for s in self.servers:
            for n in ("p1", "p2", "p3", "cfg"):
                self.serves(s, n)
            names = {p.spec.name for p in s.stub.list(pb.ListPipelinesRequest(),
                                                 timeout=T).pipelines}
            self.assertEqual(names, {"cfg", "p1", "p2", "p3"})
        self.assertEqual({n: infos(self.servers, n) for n in ("p1", "p2", "p3")}, now)
        self.assertEqual(infos(self.servers, "q1"), [grpc.StatusCode.NOT_FOUND] * 2)

        # Both back: writes work, and both instances agree on every version and id.
        c.start(lead, other[0])
        self.put_after_outage(a, "q1")
        self.put_after_outage(b, "q2")
        b.stub.delete(pb.DeletePipelineRequest(name="p2"), timeout=T_WRITE)
        self.put(a, "p3", 3, timeout=T_WRITE)
        names = ("cfg", "p1", "p3", "q1", "q2")
        for n in names:
            self.assertTrue(wait_until(lambda: agree(self.servers, n), timeout_s=30),
                            (n, infos(self.servers, n)))
        self.assertTrue(wait_until(lambda: infos(self.servers, "p2")
                                   == [grpc.StatusCode.NOT_FOUND] * 2, timeout_s=30))
        ids = [infos([a], n)[0][1] for n in names]
        self.assertEqual(len(set(ids)), len(ids), ids)
        for s in self.servers:
            self.assertEqual({p.spec.name for p in s.stub.list(pb.ListPipelinesRequest(),
                                                          timeout=T).pipelines}, set(names))
            for n in names:
                self.serves(s, n)


@unittest.skipIf(ETCD is None, "etcd-server is not installed (scripts/deps.sh test)")
@unittest.skipIf(ETCDCTL is None, "etcd-client is not installed (scripts/deps.sh test)")
class HandDeleteTest(unittest.TestCase):
    def setUp(self):
        self.etcd = start_etcd(self)
        self.ep = [f"127.0.0.1:{self.etcd.client_port}"]
        self.servers = []
        self.addCleanup(lambda: [s.stop() for s in self.servers])

    def server(self):
        s = Server(CONFIG.format(endpoints=self.ep[0], prefix=PREFIX)).start()
        self.servers.append(s)
        return s

    def gateway(self, call, body):
        """etcd's JSON gateway (keys and values in base64): for binary values etcdctl's
        arguments cannot carry."""
        enc = {k: base64.b64encode(v).decode() for k, v in body.items()}
        rq = urllib.request.Request(f"http://{self.ep[0]}/v3/kv/{call}",
                                    data=json.dumps(enc).encode(), method="POST")
        with urllib.request.urlopen(rq, timeout=T) as r:
            return json.loads(r.read())

    def id_keys(self):
        """{id: name} of the "#id/" keys in etcd."""
        start = (PREFIX + "#id/").encode()
        kvs = self.gateway("range", {"key": start,
                                     "range_end": start[:-1] + b"0"}).get("kvs", [])
        return {int(base64.b64decode(kv["key"]).decode().rsplit("/", 1)[1]):
                base64.b64decode(kv["value"]).decode() for kv in kvs}

    def freed(self, servers):
        return [(o.get("pipeline"), o.get("id")) for s in servers for o in s.logs_json()
                if o.get("msg") == FREED]

    def test_hand_deleted_pipeline_frees_its_id(self):
        a, b = self.server(), self.server()
        ids = {}
        for n in ("x", "y", "z"):
            ids[n] = self.put(a, n).id
        self.assertEqual(self.id_keys(), {ids[n]: n for n in ids})

        # By hand: the instances drop it and free its id, once between them.
        etcdctl(self.ep, "del", PREFIX + "x")
        self.assertTrue(wait_until(lambda: infos(self.servers, "x")
                                   == [grpc.StatusCode.NOT_FOUND] * 2), infos(self.servers, "x"))
        self.assertTrue(wait_until(lambda: ids["x"] not in self.id_keys(), timeout_s=30),
                        self.id_keys())
        self.assertTrue(wait_until(lambda: self.freed(self.servers) != []))
        self.assertEqual(self.id_keys(), {ids["y"]: "y", ids["z"]: "z"})
        # The id is the fleet's again: the next new name gets it (the lowest free).
        new = self.put(b, "w")
        self.assertEqual(new.id, ids["x"])
        self.assertTrue(wait_until(lambda: agree(self.servers, "w")), infos(self.servers, "w"))

        # A corepipe Delete frees the id in its own Txn: nothing for the instances to free.
        b.stub.delete(pb.DeletePipelineRequest(name="z"), timeout=T)
        self.assertTrue(wait_until(lambda: infos(self.servers, "z")
                                   == [grpc.StatusCode.NOT_FOUND] * 2))
        self.assertEqual(self.id_keys(), {ids["y"]: "y", new.id: "w"})

        # A hand delete while no instance runs: the next one to start frees the id.
        for s in self.servers:
            self.assertEqual(s.stop(), 0)
        etcdctl(self.ep, "del", PREFIX + "y")
        self.assertEqual(self.id_keys(), {ids["y"]: "y", new.id: "w"})
        c = self.server()
        self.assertEqual(self.id_keys(), {new.id: "w"})
        self.assertIn(("y", ids["y"]), self.freed([c]))
        self.assertEqual(sorted(self.freed([a, b, c])), sorted([("x", ids["x"]),
                                                                 ("y", ids["y"])]))

    def test_name_put_again_keeps_its_new_id(self):
        # x deleted by hand while no instance ran, then put again by another writer with
        # another id (as a corepipe Put with the old id key still there would): the old id
        # is freed, x keeps its key and its new id.
        a = self.server()
        old = self.put(a, "x").id
        self.assertEqual(a.stop(), 0)
        etcdctl(self.ep, "del", PREFIX + "x")
        info = pb.PipelineInfo(spec=spec("x", ("passthrough", {})), id=old + 7)
        self.gateway("put", {"key": (PREFIX + "x").encode(), "value": info.SerializeToString()})
        etcdctl(self.ep, "put", PREFIX + "#id/%d" % (old + 7), "x")
        self.assertEqual(self.id_keys(), {old: "x", old + 7: "x"})
        b = self.server()
        self.assertEqual(self.id_keys(), {old + 7: "x"})
        self.assertEqual(infos([b], "x")[0][1], old + 7)
        self.assertEqual(self.freed([b]), [("x", old)])

    def put(self, s, name):
        return s.stub.put(pb.PutPipelineRequest(pipeline=spec(name, ("passthrough", {}))),
                          timeout=T)


if __name__ == "__main__":
    unittest.main()
