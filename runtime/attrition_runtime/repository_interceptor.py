"""MLServer's model repository API over gRPC, closed to all but the pod's own loopback.

MLServer serves load, unload and index without authentication twice on its gRPC port: as the
``inference.model_repository.ModelRepositoryService`` and as the ``Repository*`` methods of
``inference.GRPCInferenceService``. Any client that can reach the port could unload the model from a
replica. :class:`RepositoryInterceptor` answers every one of those calls with PERMISSION_DENIED unless
the peer is a loopback address (``kubectl port-forward``, a shell in the pod), as the REST guard does
for ``/v2/repository``; inference, metadata and health calls pass untouched.

MLServer 1.7.1 has no setting that adds a gRPC interceptor: its ``GRPCServer._create_server`` assigns a
fresh list to ``_interceptors``, appends its own and hands the list to ``grpc.aio.server``.
:class:`GuardedGRPCServer` puts this interceptor at the head of whatever list it assigns, so MLServer's
own interceptors, servicers and options stay exactly as MLServer builds them
(:class:`attrition_runtime.start.AttritionServer` creates it in place of MLServer's).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import grpc
from grpc import aio
from mlserver.grpc import GRPCServer

from attrition_runtime.grpc_unary import before_unary
from attrition_runtime.request_ids import RequestIdInterceptor

#: Method-name prefixes of MLServer's repository API (load, unload, index) on its gRPC port.
REPOSITORY_METHODS = (
    "/inference.model_repository.ModelRepositoryService/",
    "/inference.GRPCInferenceService/Repository",
)
DENIED = "the model repository API is only served to the pod's own loopback"


def peer_address(peer: str) -> str | None:
    """The IP address in a gRPC peer string (``ipv4:10.0.0.7:5000``, ``ipv6:[::1]:5000``, which gRPC
    may percent-encode); None for any other transport (``unix:...``)."""
    kind, _, rest = unquote(peer).partition(":")
    if kind not in {"ipv4", "ipv6"}:
        return None
    return rest.rpartition(":")[0].strip("[]")


def is_loopback(peer: str) -> bool:
    """Whether a gRPC peer is on this host's loopback (127.0.0.0/8, ::1, or IPv4-mapped 127.x)."""
    try:
        address = ipaddress.ip_address((peer_address(peer) or "").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class RepositoryInterceptor(aio.ServerInterceptor):
    """PERMISSION_DENIED for repository calls from anywhere but loopback. The peer is known only to
    the call's context, so the repository methods' handlers are wrapped, and checked per call."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(REPOSITORY_METHODS):
            return handler
        return loopback_only(handler)


def loopback_only(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The handler, refusing other peers. The repository methods are all unary; a streaming one (none
    today) would be refused to every peer rather than served unchecked."""
    streaming = handler.unary_unary is None

    async def check(request, context: aio.ServicerContext) -> None:
        if streaming or not is_loopback(context.peer()):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, DENIED)

    return before_unary(handler, check)


class GuardedGRPCServer(GRPCServer):
    """MLServer's gRPC server with :class:`RepositoryInterceptor` first among its interceptors, then
    :class:`attrition_runtime.request_ids.RequestIdInterceptor`."""

    @property
    def _interceptors(self) -> list:
        return self.__dict__["_guarded_interceptors"]

    @_interceptors.setter
    def _interceptors(self, interceptors: list) -> None:
        ours = [RepositoryInterceptor(), RequestIdInterceptor()]
        self.__dict__["_guarded_interceptors"] = [*ours, *interceptors]
