"""What the container tests share: the built images (``make image``; built here if missing), a variant
with a baked model, and the helpers that talk to a container from outside."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from attrition_tools import image
from attrition_tools.container import Container, production_deployment
from attrition_tools.serve import free_ports

HOST = "127.0.0.1"


def require_images() -> None:
    """Both variants in podman's store: skip (saying what to install) without podman, else build what
    ``make image`` has not built yet."""
    if not image.available():
        pytest.skip(image.INSTALL_HINT)
    missing = [v for v in image.VARIANTS if not image.exists(image.tag(v))]
    if missing or not all(image.sbom_path(v).exists() for v in image.VARIANTS):
        image.build_all("local")


def start(tag: str, **kwargs) -> Container:
    container = Container(tag, production_deployment(), free_ports(), **kwargs)
    try:
        container.start()
    except BaseException:
        container.remove()
        raise
    return container


def raw_post(port: int, path: str, length: int, chunk: bytes, timeout: float = 10) -> tuple[int, float]:
    """POST announcing ``length`` bytes and sending ``chunk`` of them: the status line and its delay."""
    began = time.monotonic()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()
        sock.sendall(head)
        with contextlib.suppress(OSError):  # the server may answer and close before the chunk is sent
            sock.sendall(chunk)
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1]), time.monotonic() - began
