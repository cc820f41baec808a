"""A WebSocket client for /ws/updates/ behaving as a real one should: it records the events
it receives and, whenever the connection drops, reconnects with `last_event_id` set to the
last event it got (resume). With `reconnect_every`, it also drops the connection itself that
often and resumes, as a client on a flaky network does."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from websockets.sync.client import connect


class LiveClient(threading.Thread):
    def __init__(
        self,
        url: str,
        cookie: str,
        origin: str = "http://127.0.0.1",
        reconnect_every: float | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.reconnect_every = reconnect_every
        self.url, self.headers = url, {"Cookie": cookie, "Origin": origin}
        self.events: list[dict[str, Any]] = []
        self.last_id: int | None = None
        self.connections = 0
        self.closes: list[int | None] = []
        self.welcomed = threading.Event()
        self.stopping = threading.Event()
        self.paused = threading.Event()  # set: stay disconnected
        self._lock = threading.Lock()

    def ids(self) -> list[int]:
        with self._lock:
            return [e["id"] for e in self.events]

    def run(self) -> None:
        while not self.stopping.is_set():
            if self.paused.is_set():
                time.sleep(0.05)
                continue
            query = f"?last_event_id={self.last_id}" if self.last_id is not None else ""
            try:
                with connect(self.url + query, additional_headers=self.headers) as ws:
                    self.connections += 1
                    opened = time.monotonic()
                    while not self.stopping.is_set() and not self.paused.is_set():
                        if (
                            self.reconnect_every is not None
                            and time.monotonic() - opened > self.reconnect_every
                        ):
                            break
                        try:
                            raw = ws.recv(timeout=0.1)
                        except TimeoutError:
                            continue
                        self._handle(json.loads(raw))
                    ws.close()
            except Exception as exc:  # closed by the server, or the server is unreachable
                self.closes.append(getattr(getattr(exc, "rcvd", None), "code", None))
                time.sleep(0.1)

    def _handle(self, message: dict[str, Any]) -> None:
        if message["type"] == "welcome":
            if self.last_id is None:
                self.last_id = message["id"]
            self.welcomed.set()
        elif message["type"] == "event":
            with self._lock:
                self.events.append(message)
            # The largest id received, as docs/live-updates.md tells clients (and live.js).
            self.last_id = max(self.last_id or 0, message["id"])

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
