"""What several test modules share (imported as ``helpers``; conftest.py holds only fixtures and
session set-up)."""

from __future__ import annotations

from pathlib import Path

#: The repository's root.
ROOT = Path(__file__).resolve().parents[1]
#: The shared read-only data folder beside the checkout (CI, developers).
SHARED_DATA = ROOT.parent / "shared" / "data"
#: A short anchor budget for the test server, so that tests can watch the budget hold.
ANCHOR_BUDGET_S = 3.0


class TrafficDuringFault:
    """Closed-loop one-row clients and a readiness probe, run while a test breaks the server (a worker
    killed): every answer and every probe with its time, to check what clients saw around the fault.
    ``missing_retry_after`` counts 503s without a Retry-After header."""

    def __init__(self, infer_url: str, ready_url: str, body: dict, clients: int) -> None:
        import threading

        self.infer_url, self.ready_url, self.body = infer_url, ready_url, body
        self.statuses: list[tuple[float, int | str]] = []
        self.readiness: list[tuple[float, int]] = []
        self.missing_retry_after = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]
        self._threads.append(threading.Thread(target=self._probe))

    def _client(self) -> None:
        import time

        import requests

        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    answer = session.post(self.infer_url, json=self.body, timeout=30)
                    self.statuses.append((time.monotonic(), answer.status_code))
                    if answer.status_code == 503:
                        self.missing_retry_after += not answer.headers.get("Retry-After")
                        time.sleep(0.05)
                except requests.RequestException as error:
                    self.statuses.append((time.monotonic(), type(error).__name__))

    def _probe(self) -> None:
        import time

        import requests

        while not self._stop.is_set():
            self.readiness.append((time.monotonic(), requests.get(self.ready_url, timeout=10).status_code))
            time.sleep(0.1)

    def failed_since(self, moment: float) -> bool:
        """Readiness was non-200 at some probe after ``moment``."""
        return any(t > moment and s != 200 for t, s in self.readiness)

    def __enter__(self) -> TrafficDuringFault:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
