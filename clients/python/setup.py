"""corepipe's Python client: generated stubs (protoc + grpc_python_plugin, at build time, from
../../proto) and a small typed client (corepipe.Client). Installs without network: the build
uses the setuptools, grpcio and protobuf that are already there (Debian: python3-grpcio,
python3-protobuf, protobuf-compiler, protobuf-compiler-grpc), so

    python3 -m venv --system-site-packages venv && venv/bin/pip install ./clients/python

works on a host that cannot reach PyPI. There is deliberately no pyproject.toml: pip would then
build in an isolated environment and download setuptools first.
"""
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))


def find_tool(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


class BuildWithStubs(build_py):
    """Generate corepipe/v1/corepipe_pb2{,_grpc}.py and the health descriptor set into the build
    tree (never into the source tree)."""

    def run(self):
        super().run()
        out = os.path.join(self.build_lib, "corepipe")
        protoc = find_tool("protoc")
        plugin = find_tool("grpc_python_plugin", "protoc-gen-grpc_python")
        main = os.path.join(PROTO, "corepipe", "v1", "corepipe.proto")
        if not os.path.exists(main):
            raise SystemExit(f"corepipe: {main} not found: build from the corepipe source tree")
        if protoc is None or plugin is None:
            raise SystemExit("corepipe: protoc and grpc_python_plugin are needed to build "
                             "(apt-get install protobuf-compiler protobuf-compiler-grpc)")
        os.makedirs(os.path.join(out, "v1"), exist_ok=True)
        # -I so that the generated modules are corepipe.v1.corepipe_pb2{,_grpc}.
        subprocess.run([protoc, f"-I{PROTO}", f"--python_out={self.build_lib}",
                        f"--grpc_python_out={self.build_lib}",
                        f"--plugin=protoc-gen-grpc_python={plugin}", main], check=True)
        open(os.path.join(out, "v1", "__init__.py"), "a").close()
        # Health messages go into a private descriptor pool at run time (a module registering
        # grpc.health.v1 in the default pool would clash with grpcio-health-checking's).
        subprocess.run([protoc, f"-I{PROTO}", "--descriptor_set_out=" +
                        os.path.join(out, "health.desc"),
                        os.path.join(PROTO, "grpc", "health", "v1", "health.proto")], check=True)


setup(
    name="corepipe",
    version="0.3.0",
    description="Client for corepipe, a lock-free data-plane server (gRPC)",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=["corepipe"],
    package_data={"corepipe": ["py.typed"]},
    python_requires=">=3.9",
    install_requires=["grpcio>=1.30", "protobuf>=3.19"],
    cmdclass={"build_py": BuildWithStubs},
    zip_safe=False,
)
