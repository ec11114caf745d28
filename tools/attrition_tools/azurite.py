"""Azurite, the Azure Storage emulator (npm), for tests, the soak and the benchmark: a real Azure Blob
API on a free 127.0.0.1 port, reached by delta-rs through the same code path as Azure itself.

``make azurite`` installs the pinned npm package into ``.azurite/`` of the checkout. The emulator's
account and key are Microsoft's published development-storage constants, not secrets.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from attrition import config

#: Installed by ``make azurite`` (npm install --prefix .azurite azurite@<pinned>).
AZURITE_BIN = config.project_home() / ".azurite" / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Azurite:
    """Azurite's blob service in a child process (a context manager); :meth:`stop` and :meth:`start`
    again on the same port and folder simulate a storage outage with the data kept."""

    def __init__(self, folder: Path | None = None):
        if not AZURITE_BIN.exists():
            raise FileNotFoundError(f"{AZURITE_BIN} is missing: run `make azurite` (npm) first")
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="attrition-azurite-")
        self.folder = Path(folder or self._tmp.name)
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """What delta-rs needs to talk to the emulator (on Azure: the account and workload identity)."""
        return {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": self.url}

    def location(self, container: str, path: str) -> str:
        """An ``abfss://`` URL, the form the overlays use on Azure Data Lake Storage."""
        return f"abfss://{container}@{ACCOUNT}.dfs.core.windows.net/{path}"

    def start(self, timeout_s: float = 30.0) -> Azurite:
        command = [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(self.port)]
        command += ["--location", str(self.folder), "--silent", "--skipApiVersionCheck", "--disableTelemetry"]
        log = open(self.folder / "azurite.out", "ab")  # noqa: SIM115 (the child holds it)
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"azurite exited ({self.process.returncode}); see {self.folder}/azurite.out"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"azurite did not listen on {self.port} within {timeout_s:g} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def create_container(self, name: str) -> None:
        """A container (an ADLS file system), as the platform team creates it on Azure."""
        from pyarrow import fs

        authority = f"127.0.0.1:{self.port}"
        storage = fs.AzureFileSystem(
            account_name=ACCOUNT,
            account_key=ACCOUNT_KEY,
            blob_storage_authority=authority,
            blob_storage_scheme="http",
            dfs_storage_authority=authority,
            dfs_storage_scheme="http",
        )
        storage.create_dir(name)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()
