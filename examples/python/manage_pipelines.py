#!/usr/bin/env python3
"""Manage pipelines with the Python client: create, use, replace while in use, list, delete.

    PYTHONPATH=build/python/lib python3 examples/python/manage_pipelines.py

Target: $COREPIPE_TARGET (default 127.0.0.1:50051); an admin token in $COREPIPE_TOKEN when the
server has auth enabled.
"""
import sys

import corepipe

NAME = "example_checksum"


def main():
    with corepipe.Client() as c:
        types = {t.type for t in c.list_node_types()}
        print("node types:", " ".join(sorted(types)))
        info = c.put_pipeline(NAME, ["crc32c"])
        print(f"put {info.name}: id {info.id} version {info.version}")
        print("crc32c of 123456789:", c.execute(NAME, b"123456789").annotations["crc32c"])
        # Replace it (same name, same id, a new version): calls in flight finish on the old one.
        info2 = c.put_pipeline(NAME, ["sha256", ("zstd_compress", {"level": 3})])
        print(f"replaced {info2.name}: id {info2.id} version {info2.version}")
        r = c.execute(NAME, b"hello " * 100)
        print(f"sha256 {r.annotations['sha256'][:16]}..., compressed 600 -> {len(r.output)} bytes")
        for p in c.list_pipelines():
            print(f"  {p.name:20} " + " -> ".join(n.type for n in p.nodes))
        c.delete_pipeline(NAME)
        try:
            c.get_pipeline(NAME)
        except corepipe.CorepipeError as e:
            print(f"deleted {NAME}: get says {e.code.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
