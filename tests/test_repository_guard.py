"""MLServer's repository API (load, unload, index) is served to the pod's own loopback only, over both
protocols, on the real server: REST answers 403 and gRPC PERMISSION_DENIED to any other address, and
the model stays loaded and ready.

The server runs in a network namespace of its own, as in a pod: its loopback, and one veth link to
this test's namespace (a private /30, reachable from nowhere else). Calls from here arrive from the
link's address, which is what another pod's traffic looks like; calls run inside the namespace arrive
on its loopback, which is what ``kubectl port-forward`` looks like. Creating namespaces needs root
(CI runs as root) and iproute2's ``ip`` (the Makefile's test target installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import grpc
import pytest
import requests
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2 as pb
from tritonclient.utils import InferenceServerException

from attrition import config
from attrition_runtime.wire import model_path
from attrition_tools.serve import SERVED_MODEL_NAME, Server, free_ports, mlserver_command

#: The link's two ends: this test (the "other pod") and the server's namespace (the "pod").
CLIENT_ADDRESS, POD_ADDRESS = "10.203.0.1", "10.203.0.2"
#: MLServer's repository service, which tritonclient has no call for (its stubs have the same messages).
REPOSITORY_SERVICE = "/inference.model_repository.ModelRepositoryService/"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="network namespaces need root and iproute2"
)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pod_namespace():
    """A network namespace linked to this one by a veth pair; removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    name, host_end, pod_end = f"attrition-{tag}", f"at{tag}h", f"at{tag}p"
    ip("netns", "add", name)
    try:
        ip("link", "add", host_end, "type", "veth", "peer", "name", pod_end)
        ip("link", "set", pod_end, "netns", name)
        ip("addr", "add", f"{CLIENT_ADDRESS}/30", "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("-n", name, "addr", "add", f"{POD_ADDRESS}/30", "dev", pod_end)
        ip("-n", name, "link", "set", pod_end, "up")
        ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pod(release, pod_namespace, tmp_path_factory):
    """The server inside the namespace, on all of its addresses (its loopback and the link), as in a
    pod; this test reaches it at the link's far end."""
    log = tmp_path_factory.mktemp("pod") / "mlserver.log"
    command = ["ip", "netns", "exec", pod_namespace, *mlserver_command()]
    env = {"MLSERVER_HOST": "0.0.0.0"}  # inside the namespace only: lo and the test's link
    server = Server(config.model_uri(config.PRODUCTION), host=POD_ADDRESS, ports=free_ports(),
                    env=env, log_path=log, command=command)  # fmt: skip
    with server as running:
        yield running


def unload_request() -> pb.RepositoryModelUnloadRequest:
    return pb.RepositoryModelUnloadRequest(model_name=SERVED_MODEL_NAME)


def repository_call(address: str, method: str, request) -> grpc.StatusCode:
    """A call to MLServer's repository service, by method name; its status code."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            REPOSITORY_SERVICE + method, request_serializer=lambda m: m.SerializeToString()
        )
        try:
            call(request, timeout=30)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def assert_ready(pod: Server) -> None:
    assert requests.get(pod.http_url + model_path(SERVED_MODEL_NAME, "ready"), timeout=10).status_code == 200
    client = grpcclient.InferenceServerClient(pod.grpc_address)
    try:
        assert client.is_model_ready(SERVED_MODEL_NAME)
    finally:
        client.close()


def test_rest_repository_api_is_forbidden_off_loopback(pod):
    for method, path in [("POST", f"models/{SERVED_MODEL_NAME}/unload"), ("POST", "index"),
                         ("POST", f"models/{SERVED_MODEL_NAME}/load")]:  # fmt: skip
        answer = requests.request(method, f"{pod.http_url}/v2/repository/{path}", timeout=30)
        assert answer.status_code == 403, (path, answer.text)
        assert "loopback" in answer.json()["error"]
    assert_ready(pod)


def test_grpc_repository_calls_are_denied_off_loopback(pod):
    # The KServe V2 extension on the inference service (what tritonclient calls) ...
    client = grpcclient.InferenceServerClient(pod.grpc_address)
    try:
        for call in (lambda: client.unload_model(SERVED_MODEL_NAME), client.get_model_repository_index):
            with pytest.raises(InferenceServerException) as denied:
                call()
            assert denied.value.status() == "StatusCode.PERMISSION_DENIED"
            assert "loopback" in denied.value.message()
    finally:
        client.close()
    # ... and MLServer's own repository service.
    assert repository_call(pod.grpc_address, "RepositoryModelUnload", unload_request()) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert_ready(pod)
    # Inference and metadata are not the repository API: served to everyone.
    client = grpcclient.InferenceServerClient(pod.grpc_address)
    try:
        assert client.get_model_metadata(SERVED_MODEL_NAME).name == SERVED_MODEL_NAME
    finally:
        client.close()


LOOPBACK_INDEX = """
import sys
import grpc
from tritonclient.grpc import service_pb2 as pb

with grpc.insecure_channel(sys.argv[1]) as channel:
    index = channel.unary_unary(sys.argv[2], request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=pb.RepositoryIndexResponse.FromString)
    print(sorted(m.name for m in index(pb.RepositoryIndexRequest(), timeout=30).models))
"""


def test_the_pods_loopback_is_served(pod, pod_namespace):
    """Inside the namespace, as ``kubectl port-forward`` arrives: the index is answered (read-only, so
    the model stays loaded for the other tests)."""
    address = f"127.0.0.1:{pod.ports['grpc']}"
    for method in (REPOSITORY_SERVICE + "RepositoryIndex", "/inference.GRPCInferenceService/RepositoryIndex"):
        result = subprocess.run(
            ["ip", "netns", "exec", pod_namespace, sys.executable, "-c", LOOPBACK_INDEX, address, method],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert SERVED_MODEL_NAME in result.stdout
    assert_ready(pod)
