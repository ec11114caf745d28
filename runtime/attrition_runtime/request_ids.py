"""Every gRPC inference answer carries a request id, as every REST answer does.

MLServer makes an id for a request without one when the id is missing (REST), but gRPC's protobuf
reads a missing id as ``""``, which MLServer keeps: the answer then has no id, while the inference log
and the telemetry line need one for its rows. :class:`RequestIdInterceptor` gives such a ``ModelInfer``
request a fresh UUID before MLServer reads it, so the answer, the log's ``request_id`` and the
telemetry line agree, as over REST. Ids that clients set pass untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import grpc
from grpc import aio

from attrition_runtime.grpc_unary import before_unary

#: The V2 inference method on MLServer's gRPC port.
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


class RequestIdInterceptor(aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler_call_details.method != MODEL_INFER:
            return handler
        return with_request_id(handler)


def with_request_id(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    async def identify(request, context: aio.ServicerContext) -> None:
        if not request.id:
            request.id = str(uuid.uuid4())

    return before_unary(handler, identify)
