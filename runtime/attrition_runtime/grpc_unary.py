"""A unary gRPC method handler with a step of ours before MLServer's: how the server's interceptors
(the repository guard, request ids) act per call, when only the call's context knows the peer and
only the request holds its id."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import grpc
from grpc import aio

Before = Callable[[object, aio.ServicerContext], Awaitable[None]]


def before_unary(handler: grpc.RpcMethodHandler, before: Before) -> grpc.RpcMethodHandler:
    """``handler`` with ``before(request, context)`` awaited first (it may abort the call, or change
    the request); serialisation stays the handler's own."""
    behaviour = handler.unary_unary

    async def wrapped(request, context: aio.ServicerContext):
        await before(request, context)
        result = behaviour(request, context)
        return await result if inspect.isawaitable(result) else result

    return grpc.unary_unary_rpc_method_handler(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
