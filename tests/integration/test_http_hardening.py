"""The HTTP endpoint under abuse (finding 8, and 18's /metrics%00): 80 slowloris sockets from
127.0.0.2..127.0.0.11 do not lock /healthz, /readyz and /metrics out for a probe from 127.0.0.1
(per-peer limit, reserve for new peers); a client that dribbles its headers a byte at a time
is closed at the header deadline, which no byte resets; the path is matched as sent."""
import socket
import unittest

from prometheus_client.parser import text_string_to_metric_families

from serverlib import Server, wait_until

ATTACKERS = [f"127.0.0.{i}" for i in range(2, 12)]  # 10 peers x 8 sockets = 80


def http_get(port, path, src="127.0.0.1", timeout=10):
    """One request on a fresh connection from @src; (status line, body) or None if refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        s.close()
    if not data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode("utf-8", "replace")


def metrics(port):
    r = http_get(port, "/metrics")
    assert r is not None and r[0].endswith("200 OK"), r
    out = {}
    for fam in text_string_to_metric_families(r[1]):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def val(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


class HttpHardeningTest(unittest.TestCase):
    def setUp(self):
        self.srv = Server("")
        # Deadlines far away: what holds here is the admission policy, whatever the timing.
        self.srv.env["COREPIPE_SERVER_METRICS_HEADER_TIMEOUT_MS"] = "600000"
        self.srv.env["COREPIPE_SERVER_METRICS_REQUEST_TIMEOUT_MS"] = "600000"
        self.srv.start()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.assertEqual(self.srv.stop(), 0, self.srv.log())

    def open_slowloris(self, src):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", self.srv.metrics_port))
        try:
            s.sendall(b"G")  # the first byte of a request that never ends
        except OSError:
            pass
        self.socks.append(s)

    def test_slowloris_from_80_sockets_leaves_probes_reachable(self):
        port = self.srv.metrics_port
        for src in ATTACKERS:
            for _ in range(8):
                self.open_slowloris(src)
        # Every attacking socket has been taken or refused: 6 peers x 8 fill 48 (64 minus the
        # reserve of 16), then 4 more peers get one each from the reserve: 52 held, 28
        # refused (each of the last 4 peers' 2nd..8th: "reserve").
        def settled():
            m = metrics(port)
            refused = sum(val(m, "corepipe_http_connections_refused_total", reason=r)
                          for r in ("total", "peer", "reserve"))
            return refused == 28 and val(m, "corepipe_http_connections") == 52 + 1

        self.assertTrue(wait_until(settled, 20), metrics(port))
        m = metrics(port)
        self.assertEqual(val(m, "corepipe_http_connections_refused_total", reason="reserve"), 28)
        # The probes, counted in calls: each one answered.
        for path, want in (("/healthz", "ok"), ("/readyz", "ready"),
                           ("/metrics", "corepipe_build_info")):
            r = http_get(port, path)
            self.assertIsNotNone(r, path)
            self.assertTrue(r[0].endswith("200 OK"), (path, r[0]))
            self.assertIn(want, r[1])
        # One of the attackers cannot take a ninth connection, nor a second one from the
        # reserve.
        self.assertIsNone(http_get(port, "/healthz", src=ATTACKERS[0]))
        self.assertIsNone(http_get(port, "/healthz", src=ATTACKERS[-1]))

    def test_path_matched_as_sent(self):
        port = self.srv.metrics_port
        for path in ("/metrics%00", "/metrics%00.txt", "/metric%73", "/%6detrics", "/healthz/",
                     "/healthz%00"):
            r = http_get(port, path)
            self.assertIsNotNone(r, path)
            self.assertTrue(r[0].endswith("404 Not Found"), (path, r[0]))
        r = http_get(port, "/metrics?name[]=x")
        self.assertTrue(r[0].endswith("200 OK"), r[0])


class HeaderDeadlineTest(unittest.TestCase):
    def test_dribbled_headers_closed_at_the_deadline(self):
        srv = Server("")
        srv.env["COREPIPE_SERVER_METRICS_HEADER_TIMEOUT_MS"] = "1000"
        srv.start()
        try:
            s = socket.create_connection(("127.0.0.1", srv.metrics_port), timeout=10)
            request = b"GET /healthz HTTP/1.1\r\nX-Padding: " + b"a" * 10000
            sent = 0
            closed = False
            # A byte every 50 ms resets libmicrohttpd's inactivity timeout forever; the header
            # deadline (1 s here) does not care. Bounded: 400 bytes (about 20 s).
            while sent < 400 and not closed:
                try:
                    s.sendall(request[sent:sent + 1])
                    sent += 1
                    s.settimeout(0.05)
                    closed = s.recv(1) == b""
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
            s.close()
            self.assertTrue(closed, f"still open after {sent} bytes")
            self.assertTrue(wait_until(lambda: val(metrics(srv.metrics_port),
                                                   "corepipe_http_deadline_closed_total",
                                                   deadline="headers") == 1, 10))
            # A well-behaved client is unaffected.
            self.assertTrue(http_get(srv.metrics_port, "/healthz")[0].endswith("200 OK"))
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())


if __name__ == "__main__":
    unittest.main()
