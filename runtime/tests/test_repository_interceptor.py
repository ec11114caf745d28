"""The gRPC repository interceptor in process, on a real grpc.aio server built by MLServer's own
GRPCServer: peers are parsed as gRPC writes them, the interceptor heads MLServer's list (its own
interceptors kept), and a loopback client is served. Off-loopback refusal needs another address, so
the real server from a network namespace is tests/test_repository_guard.py's (the main session)."""

from __future__ import annotations

import asyncio
import tempfile

import grpc
import pytest
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc
from mlserver.grpc.interceptors import PromServerInterceptor
from mlserver.handlers import DataPlane, ModelRepositoryHandlers
from mlserver.registry import MultiModelRegistry
from mlserver.repository import SchemalessModelRepository
from mlserver.settings import Settings

from attrition_runtime.repository_interceptor import (
    GuardedGRPCServer,
    RepositoryInterceptor,
    is_loopback,
    peer_address,
)
from attrition_runtime.request_ids import RequestIdInterceptor


@pytest.mark.parametrize(
    ("peer", "address", "loopback"),
    [
        ("ipv4:127.0.0.1:50051", "127.0.0.1", True),
        ("ipv4:127.3.4.5:1", "127.3.4.5", True),
        ("ipv6:[::1]:50051", "::1", True),
        ("ipv6:%5B::1%5D:50051", "::1", True),
        ("ipv6:[::ffff:127.0.0.1]:9", "::ffff:127.0.0.1", True),
        ("ipv4:10.244.1.7:41234", "10.244.1.7", False),
        ("ipv6:[fd00::7]:41234", "fd00::7", False),
        ("ipv6:[::ffff:10.0.0.1]:9", "::ffff:10.0.0.1", False),
        ("unix:/tmp/socket", None, False),
        ("", None, False),
    ],
)
def test_peers_are_parsed_as_grpc_writes_them(peer, address, loopback):
    assert peer_address(peer) == address
    assert is_loopback(peer) is loopback


#: One data plane per process: MLServer registers its Prometheus series when it creates one.
_REGISTRY = MultiModelRegistry()
_DATA_PLANE = DataPlane(Settings(), _REGISTRY)


def guarded_server(metrics: bool) -> GuardedGRPCServer:
    settings = Settings(
        host="127.0.0.1", grpc_port=0, debug=False, metrics_endpoint="/metrics" if metrics else None
    )
    # An empty folder: a repository with no models.
    handlers = ModelRepositoryHandlers(SchemalessModelRepository(tempfile.mkdtemp()), _REGISTRY)
    return GuardedGRPCServer(settings, _DATA_PLANE, handlers)


@pytest.mark.parametrize("metrics", [False, True])
def test_the_interceptor_heads_mlservers_own_list(metrics):
    server = guarded_server(metrics)
    server._create_server()
    interceptors = server._interceptors
    assert [type(i) for i in interceptors[:2]] == [RepositoryInterceptor, RequestIdInterceptor]
    assert [type(i) for i in interceptors[2:]] == ([PromServerInterceptor] if metrics else [])


def test_a_loopback_client_is_served():
    async def scenario() -> tuple[int, bool]:
        server = guarded_server(metrics=False)
        grpc_server = server._create_server()
        port = grpc_server.add_insecure_port("127.0.0.1:0")
        await grpc_server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = dataplane_pb2_grpc.GRPCInferenceServiceStub(channel)
                index = await stub.RepositoryIndex(pb.RepositoryIndexRequest())
                live = await stub.ServerLive(pb.ServerLiveRequest())
            return len(index.models), live.live
        finally:
            await grpc_server.stop(grace=None)

    assert asyncio.run(scenario()) == (0, True)
