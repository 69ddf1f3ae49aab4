"""A tiny scripted HTTP server on 127.0.0.1 for testing provider adapters through their real SDKs.

The server records every request (method, path, query, headers, raw body and decoded JSON body)
and answers from a FIFO queue of scripted `Reply` objects: a JSON body, raw bytes, or a
Server-Sent-Events stream, with any status code and headers (Retry-After, ...). A reply may also
be a callable that receives the `RecordedRequest` and returns a `Reply`, for answers that depend
on the request. When the queue is empty the server answers 418 with a JSON error saying so, which
makes a test that sent one request too many fail loudly instead of hanging.

Usage::

    with FakeHTTPServer() as server:
        server.enqueue(Reply.json_body({"ok": True}))
        server.enqueue(Reply.sse(['{"a": 1}', "[DONE]"]))
        client = SomeSDK(base_url=server.url)
        ...
        assert server.requests[0].json == {...}

It runs in a daemon thread (one thread per connection, HTTP/1.1 keep-alive), binds a random free
port and is shut down by the context manager.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeHTTPServer", "RecordedRequest", "Reply", "SSEEvent"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        """The body decoded as JSON (None when empty); raises if it is not JSON."""
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass(frozen=True)
class SSEEvent:
    """One Server-Sent Event. `data` that is not a str is JSON-encoded."""

    data: Any
    event: str | None = None

    def encode(self) -> bytes:
        payload = self.data if isinstance(self.data, str) else json.dumps(self.data)
        lines = []
        if self.event is not None:
            lines.append(f"event: {self.event}")
        lines.extend(f"data: {line}" for line in payload.split("\n"))
        return ("\n".join(lines) + "\n\n").encode()


@dataclass
class Reply:
    """A scripted response.

    `events` makes it an SSE stream (`text/event-stream`, chunked), each event flushed on its own
    with `event_delay_s` between them. `delay_s` waits before answering at all (to provoke client
    timeouts). `drop_after` closes the connection after that many events, mid-stream.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    events: list[SSEEvent] | None = None
    delay_s: float = 0.0
    event_delay_s: float = 0.0
    drop_after: int | None = None

    @classmethod
    def json_body(
        cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Reply:
        hdrs = {"content-type": "application/json"}
        hdrs.update(headers or {})
        return cls(status=status, body=json.dumps(payload).encode(), headers=hdrs)

    @classmethod
    def sse(
        cls,
        events: Iterable[SSEEvent | Any],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        event_delay_s: float = 0.0,
        drop_after: int | None = None,
    ) -> Reply:
        """An SSE stream; plain items (dicts, strings such as "[DONE]") become data-only events."""
        evs = [e if isinstance(e, SSEEvent) else SSEEvent(e) for e in events]
        hdrs = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        hdrs.update(headers or {})
        return cls(
            status=status,
            headers=hdrs,
            events=evs,
            event_delay_s=event_delay_s,
            drop_after=drop_after,
        )


Responder = Reply | Callable[[RecordedRequest], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr noise
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        owner = self.server.owner
        reply = owner._take(request)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        try:
            if reply.events is None:
                self._send_plain(reply)
            else:
                self._send_stream(reply)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (timeout test) or was closed: nothing to answer any more.
            self.close_connection = True

    def _send_plain(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
        self.wfile.flush()

    def _send_stream(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for n, event in enumerate(reply.events or []):
            if reply.drop_after is not None and n >= reply.drop_after:
                # Abort without the terminating chunk: the client sees a broken stream.
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            if n and reply.event_delay_s:
                time.sleep(reply.event_delay_s)
            data = event.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle
    do_PATCH = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or hung up mid-reply is part of the scenarios under test.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class FakeHTTPServer:
    """A recording, scripted HTTP server on a random 127.0.0.1 port. See the module docstring."""

    def __init__(self, *, base_path: str = "") -> None:
        self._lock = threading.Lock()
        self._queue: deque[Responder] = deque()
        self._requests: list[RecordedRequest] = []
        self._base_path = base_path.rstrip("/")
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeHTTPServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL including `base_path` (e.g. "/v1"), without a trailing slash."""
        return f"http://127.0.0.1:{self.port}{self._base_path}"

    def enqueue(self, *replies: Responder) -> None:
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.requests)

    def _take(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            responder = self._queue.popleft() if self._queue else None
        if responder is None:
            return Reply.json_body(
                {"error": {"message": f"no scripted reply for {request.method} {request.path}"}},
                status=418,
            )
        return responder(request) if callable(responder) else responder
