"""Client-side modules must never import mlserver: MLServer's and tritonclient's gRPC stubs register the
same protobuf symbols, so a process (a client, a test session, a notebook) that loads both fails."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from attrition_runtime.wire import DEFAULT_PORTS

pytestmark = pytest.mark.unit

CLIENT_SIDE = (
    "attrition_runtime.client",
    "attrition_runtime.binary",
    "attrition_runtime.wire",
    "attrition_runtime.settings",
    "attrition_runtime.monitoring",
    "attrition_tools.serve",
    "attrition_tools.bad_requests",
    "attrition_tools.fuzz",
    "attrition_tools.bench",
    "attrition_tools.soak",
)


def test_client_side_modules_do_not_import_mlserver():
    script = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in CLIENT_SIDE)
        + "import tritonclient.grpc\n"
        + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlserver'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_this_test_session_has_not_imported_mlserver():
    assert not [m for m in sys.modules if m.split(".")[0] == "mlserver"]


def test_restated_default_ports_are_mlservers():
    script = (
        "from mlserver.settings import Settings\n"
        "s = Settings()\n"
        "print(s.http_port, s.grpc_port, s.metrics_port)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.split() == [str(p) for p in DEFAULT_PORTS.values()]
