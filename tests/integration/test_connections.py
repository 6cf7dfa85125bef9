"""Connections: server.max_connections is enforced (refused connections fail fast with
UNAVAILABLE, a slot frees when a client leaves), and 1000 concurrent client connections each
get their answers, with the server's exact connection count reaching 1000 and the memory cost
per connection reported."""
import resource
import unittest

import grpc

import corepipe_pb2 as pb
from reference import crc32c
from serverlib import RPC_TIMEOUT_S as T, Server, Stubs, unary, wait_until

CONFIG = """
server: { max_connections: %d }
pipelines:
  crc:
    - type: crc32c
"""


def stats(srv):
    return unary(srv.channel, "/corepipe.v1.Admin/GetStats", pb.GetStatsRequest,
                 pb.Stats)(pb.GetStatsRequest(), timeout=T)


def own_channel(srv):
    return grpc.insecure_channel(f"127.0.0.1:{srv.port}",
                                 options=[("grpc.use_local_subchannel_pool", 1)])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class MaxConnectionsTest(unittest.TestCase):
    def test_limit_refuses_then_frees(self):
        srv = Server(CONFIG % 4).start()
        chans = []
        try:
            stats(srv)  # the test's own admin connection is one of the 4
            for i in range(3):
                ch = own_channel(srv)
                chans.append(ch)
                r = Stubs(ch).execute(pb.ExecuteRequest(name="crc",
                                                        input=pb.Payload(data=b"%d" % i)),
                                      timeout=T)
                self.assertEqual(r.annotations["crc32c"], crc32c(b"%d" % i))
            self.assertEqual(stats(srv).connections, 4)
            extra = own_channel(srv)
            with self.assertRaises(grpc.RpcError) as cm:
                Stubs(extra).execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"x")),
                                     timeout=5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            extra.close()
            self.assertGreaterEqual(stats(srv).connections_refused, 1)
            self.assertLessEqual(stats(srv).connections, 4)
            # A client leaves: its slot frees and a new client gets in.
            chans.pop().close()
            self.assertTrue(wait_until(lambda: stats(srv).connections <= 3, 10))
            ch = own_channel(srv)
            chans.append(ch)
            r = Stubs(ch).execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"in")),
                                  timeout=T)
            self.assertEqual(r.annotations["crc32c"], crc32c(b"in"))
        finally:
            for ch in chans:
                ch.close()
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())


class ThousandConnectionsTest(unittest.TestCase):
    N = 1000

    def test_1000_concurrent_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = 4 * self.N + 256
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        srv = Server(CONFIG % (self.N + 16)).start()
        chans = []
        try:
            base = rss_kb(srv.proc.pid)
            chans = [own_channel(srv) for _ in range(self.N)]
            futures = [Stubs(ch).execute.future(
                pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"c%d" % i)), timeout=60)
                for i, ch in enumerate(chans)]
            for i, f in enumerate(futures):
                self.assertEqual(f.result(timeout=90).annotations["crc32c"],
                                 crc32c(b"c%d" % i))
            st = stats(srv)
            self.assertGreaterEqual(st.connections, self.N)
            self.assertEqual(st.connections_refused, 0)
            per_conn = (rss_kb(srv.proc.pid) - base) / self.N
            print("\n1000 idle connections: server RSS +%.1f KiB per connection" % per_conn)
            self.assertLess(per_conn, 512)
        finally:
            for ch in chans:
                ch.close()
            if chans:
                self.assertTrue(wait_until(lambda: stats(srv).connections <= 2, 30))
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())


if __name__ == "__main__":
    unittest.main()
