"""corepipe: Python client of the corepipe data-plane server.

    import corepipe
    with corepipe.Client("127.0.0.1:50051") as c:
        c.execute("crc32c", b"123456789").annotations   # {'crc32c': 'e3069283'}

The generated stubs are corepipe.v1.corepipe_pb2 and corepipe.v1.corepipe_pb2_grpc.
"""
from .client import (SERVICE_CONFIG, Audio, Client, CorepipeError, Node, PipelineInfo, Result,
                     StreamResult, __version__, fleet_options, fleet_target)

__all__ = ["Audio", "Client", "CorepipeError", "Node", "PipelineInfo", "Result", "StreamResult",
           "SERVICE_CONFIG", "fleet_options", "fleet_target", "__version__"]
