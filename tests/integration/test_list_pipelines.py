"""Admin/ListPipelines is paged (finding 15): name order, a default and maximum page size of
1000, a response bound of 1 MiB, an opaque next_page_token that walks every pipeline exactly
once, and the error statuses of bad page arguments; and a spec's text is bounded (16 KiB), so
no pipeline can make one entry large."""
import base64
import unittest

import grpc

import corepipe_pb2 as pb
from serverlib import RPC_TIMEOUT_S as T, Server, spec

# A valid, 254-byte value for zstd_decompress's max_bytes ("000...0001000" is 1000).
LONG_VALUE = "0" * 250 + "1000"


def big_spec(name, nodes=58):
    """About 16 KB of text: 58 zstd_decompress nodes with a 254-byte parameter each."""
    return spec(name, *[("zstd_decompress", {"max_bytes": LONG_VALUE})] * nodes)


class ListPipelinesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("limits: { max_nodes: 64 }\n"
                         "pipelines:\n  aaa_file:\n    - type: passthrough\n").start()
        cls.st = cls.srv.stub

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0, cls.srv.log()

    def put_all(self, specs):
        futs = [self.st.put.future(pb.PutPipelineRequest(pipeline=s), timeout=60)
                for s in specs]
        for f in futs:
            f.result()

    def walk(self, page_size=0):
        names, pages, token = [], 0, ""
        while True:
            r = self.st.list(pb.ListPipelinesRequest(page_size=page_size, page_token=token),
                             timeout=T)
            self.assertLessEqual(r.ByteSize(), 1 << 20)
            names += [p.spec.name for p in r.pipelines]
            pages += 1
            token = r.next_page_token
            if not token:
                return names, pages
            self.assertLess(pages, 10000)

    def test_1_pages_walk_everything_once_in_order(self):
        self.put_all([spec(f"p{i:04d}", ("passthrough", {})) for i in range(2500)])
        want = sorted(["aaa_file"] + [f"p{i:04d}" for i in range(2500)])
        # A client that knows nothing of paging: the first 1000, in order, and a token.
        r = self.st.list(pb.ListPipelinesRequest(), timeout=T)
        self.assertEqual([p.spec.name for p in r.pipelines], want[:1000])
        self.assertNotEqual(r.next_page_token, "")
        names, pages = self.walk()
        self.assertEqual(names, want)
        self.assertEqual(pages, 3)
        names, pages = self.walk(page_size=7)
        self.assertEqual(names, want)
        self.assertEqual(pages, (len(want) + 6) // 7)
        r = self.st.list(pb.ListPipelinesRequest(page_size=5000), timeout=T)
        self.assertEqual(len(r.pipelines), 1000)  # coerced to the maximum
        # Deleted between pages: not seen; nothing seen twice.
        r = self.st.list(pb.ListPipelinesRequest(page_size=10), timeout=T)
        self.st.delete(pb.DeletePipelineRequest(name=want[10]), timeout=T)
        r2 = self.st.list(pb.ListPipelinesRequest(page_size=10,
                                                  page_token=r.next_page_token), timeout=T)
        self.assertEqual([p.spec.name for p in r2.pipelines], want[11:21])

    def test_2_bad_page_arguments(self):
        inv = grpc.StatusCode.INVALID_ARGUMENT
        bad_token = base64.urlsafe_b64encode(b"2/p0001").decode().rstrip("=")
        for req, frag in ((pb.ListPipelinesRequest(page_size=-1), "page_size -1"),
                          (pb.ListPipelinesRequest(page_token="zzz!"), "page_token"),
                          (pb.ListPipelinesRequest(page_token=bad_token), "page_token"),
                          (pb.ListPipelinesRequest(page_token="A" * 5000), "page_token")):
            with self.assertRaises(grpc.RpcError) as cm:
                self.st.list(req, timeout=T)
            self.assertEqual(cm.exception.code(), inv)
            self.assertIn(frag, cm.exception.details())

    def test_3_large_specs_bounded_per_response(self):
        self.put_all([big_spec(f"zz_big{i:03d}") for i in range(100)])
        names, token, cut_by_bytes = [], "", 0
        while True:
            r = self.st.list(pb.ListPipelinesRequest(page_token=token), timeout=T)
            self.assertLessEqual(r.ByteSize(), 1 << 20, "one answer over 1 MiB")
            names += [p.spec.name for p in r.pipelines if p.spec.name.startswith("zz_big")]
            token = r.next_page_token
            if not token:
                break
            cut_by_bytes += len(r.pipelines) < 1000  # a short page that is not the last
        self.assertEqual(names, [f"zz_big{i:03d}" for i in range(100)])
        self.assertGreaterEqual(cut_by_bytes, 1)  # 100 x ~17 KB do not fit in one answer
        # One spec over 16 KiB of text is refused before it is stored.
        with self.assertRaises(grpc.RpcError) as cm:
            self.st.put(pb.PutPipelineRequest(pipeline=big_spec("too_big", 60)), timeout=T)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("exceeds 16384 bytes", cm.exception.details())


if __name__ == "__main__":
    unittest.main()
