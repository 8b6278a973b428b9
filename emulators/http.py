"""The HTTPS server, request/response types and routing shared by the three emulators.

An emulator is a plain object (see ``Emulator``) that owns its state and routes. ``EmulatorServer``
puts it behind a threaded HTTPS/1.1 server on loopback and adds what every emulator shares:
the admin API under ``/_emulator/``, request statistics, fault injection and a shared clock.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from emulators.clock import Clock
from emulators.faults import FaultInjector
from emulators.stats import Stats
from emulators.tls import TlsMaterial

ADMIN_PREFIX = "/_emulator/"


class Headers:
    """Case-insensitive, order-keeping header multimap."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)

    def get(self, name: str, default: str | None = None) -> str | None:
        lower = name.lower()
        for key, value in self._items:
            if key.lower() == lower:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lower = name.lower()
        return [value for key, value in self._items if key.lower() == lower]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


@dataclass
class Request:
    """One HTTP request as the emulator sees it: the raw target is kept, never re-encoded."""

    method: str
    target: str
    headers: Headers
    body: bytes = b""
    base_url: str = ""

    @property
    def path(self) -> str:
        """The raw (still percent-encoded) path without the query string."""
        return self.target.split("?", 1)[0]

    @property
    def query_string(self) -> str:
        parts = self.target.split("?", 1)
        return parts[1] if len(parts) == 2 else ""

    @property
    def query(self) -> dict[str, str]:
        """Decoded query parameters; the last value wins, as most servers do."""
        return dict(parse_qsl(self.query_string, keep_blank_values=True))

    @property
    def query_list(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string, keep_blank_values=True)

    @property
    def decoded_path(self) -> str:
        return unquote(self.path)

    def json(self) -> Any:
        """The JSON body; ``ValueError`` when it is not JSON (each emulator picks its envelope)."""
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reset_connection: bool = False

    @classmethod
    def json(cls, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
        body = json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")
        return cls(status, [("Content-Type", "application/json; charset=utf-8"), *headers], body)

    @classmethod
    def empty(cls, status: int = 204, headers: Iterable[tuple[str, str]] = ()) -> Response:
        return cls(status, list(headers), b"")

    @classmethod
    def text(
        cls,
        status: int,
        text: str,
        content_type: str = "text/plain; charset=utf-8",
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        return cls(status, [("Content-Type", content_type), *headers], text.encode("utf-8"))

    def header(self, name: str) -> str | None:
        return Headers(self.headers).get(name)


Handler = Callable[[Request, "re.Match[str]"], Response]


@dataclass(frozen=True)
class Route:
    """``pattern`` is a regex matched in full against the raw path; ``name`` groups stats."""

    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler


def route(method: str, pattern: str, name: str, handler: Handler) -> Route:
    return Route(method.upper(), re.compile(pattern), name, handler)


class Emulator:
    """Base class of a stateful emulator. Subclasses set ``name`` and implement the hooks."""

    name = "emulator"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.base_url = ""

    # --- hooks ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """Routes of the emulated service."""
        return []

    def admin_routes(self) -> list[Route]:
        """Extra admin routes; their patterns are matched against the path after ``/_emulator``."""
        return []

    def reset(self) -> None:
        """Forget all data and return to the configured defaults."""

    def seed(self, payload: Any) -> dict[str, Any]:
        """Load data (emulator-specific JSON); returns counts of what was loaded."""
        return {}

    def state(self, request: Request) -> Any:
        """Current data, filterable by query parameters; unfiltered it is valid ``seed`` input."""
        return {}

    def export_state(self) -> Any:
        """All data in ``seed`` format, for ``--persist``."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What clients need to reach this emulator (goes into the ports file)."""
        return {"base_url": self.base_url}

    def configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Change behaviour settings (limits, flags); returns the full current configuration."""
        return {}

    def not_found(self, request: Request) -> Response:
        return Response.json(404, {"message": f"No route for {request.method} {request.path}"})

    def fault_response(self, status: int, retry_after: float | None) -> Response:
        """The body a real service would send with an injected status."""
        headers = (
            [("Retry-After", _retry_after_value(retry_after))] if retry_after is not None else []
        )
        return Response.json(status, {"message": f"Injected fault {status}"}, headers)

    def is_throttle(self, response: Response) -> bool:
        return response.status == 429


def _retry_after_value(seconds: float) -> str:
    return str(max(0, int(round(seconds))))


class EmulatorServer:
    """Runs one ``Emulator`` behind HTTPS on loopback, in daemon threads."""

    def __init__(
        self,
        emulator: Emulator,
        tls: TlsMaterial,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fault_seed: int = 0,
    ) -> None:
        self.emulator = emulator
        self.stats = Stats()
        self.faults = FaultInjector(seed=fault_seed)
        self._routes = emulator.routes()
        self._admin_routes = _standard_admin_routes(self) + emulator.admin_routes()
        self._httpd = _TlsHttpServer((host, port), _RequestHandler, self, tls)
        bound_host, bound_port = self._httpd.server_address[:2]
        host_text = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        self.base_url = f"https://{host_text}:{bound_port}"
        emulator.base_url = self.base_url
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"{self.emulator.name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- dispatch ------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        request.base_url = self.base_url
        if request.path.startswith(ADMIN_PREFIX):
            return self._dispatch_admin(request)
        route_found, match, allowed = _find_route(self._routes, request.method, request.path)
        route_name = route_found.name if route_found else "(unrouted)"
        started = time.perf_counter()
        fault = self.faults.match(request.method, request.path)
        if fault is not None:
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.reset_connection:
                response = Response(0, reset_connection=True)
            elif fault.status is not None:
                response = self.emulator.fault_response(fault.status, fault.retry_after)
            else:
                response = self._call(request, route_found, match, allowed)
        else:
            response = self._call(request, route_found, match, allowed)
        self.stats.record(
            route=route_name,
            status=response.status,
            bytes_in=len(request.body),
            bytes_out=len(response.body),
            throttled=self.emulator.is_throttle(response),
            fault=fault is not None,
            seconds=time.perf_counter() - started,
        )
        return response

    def _call(
        self, request: Request, found: Route | None, match: re.Match[str] | None, allowed: bool
    ) -> Response:
        if found is None or match is None:
            if allowed:
                return Response.json(405, {"message": f"Method {request.method} not allowed"})
            return self.emulator.not_found(request)
        return found.handler(request, match)

    def _dispatch_admin(self, request: Request) -> Response:
        sub_path = request.path[len(ADMIN_PREFIX) - 1 :]
        found, match, allowed = _find_route(self._admin_routes, request.method, sub_path)
        if found is None or match is None:
            status = 405 if allowed else 404
            return Response.json(status, {"error": f"no admin route {request.method} {sub_path}"})
        try:
            return found.handler(request, match)
        except (ValueError, KeyError, TypeError) as exc:
            return Response.json(400, {"error": f"{type(exc).__name__}: {exc}"})


def _find_route(
    routes: list[Route], method: str, path: str
) -> tuple[Route | None, re.Match[str] | None, bool]:
    allowed = False
    for candidate in routes:
        match = candidate.pattern.fullmatch(path)
        if match is None:
            continue
        if candidate.method == method.upper():
            return candidate, match, True
        allowed = True
    return None, None, allowed


def _standard_admin_routes(server: EmulatorServer) -> list[Route]:
    emulator = server.emulator

    def reset(request: Request, _: re.Match[str]) -> Response:
        with emulator.lock:
            emulator.reset()
        server.stats.reset()
        server.faults.clear()
        return Response.json(200, {"reset": emulator.name})

    def seed(request: Request, _: re.Match[str]) -> Response:
        payload = request.json()
        with emulator.lock:
            loaded = emulator.seed(payload)
        return Response.json(200, {"seeded": loaded})

    def state(request: Request, _: re.Match[str]) -> Response:
        with emulator.lock:
            return Response.json(200, emulator.state(request))

    def get_config(request: Request, _: re.Match[str]) -> Response:
        with emulator.lock:
            return Response.json(200, emulator.configure({}))

    def set_config(request: Request, _: re.Match[str]) -> Response:
        payload = request.json() or {}
        if not isinstance(payload, dict):
            raise ValueError("config body must be a JSON object")
        with emulator.lock:
            return Response.json(200, emulator.configure(payload))

    def stats(request: Request, _: re.Match[str]) -> Response:
        return Response.json(200, server.stats.snapshot())

    def clear_stats(request: Request, _: re.Match[str]) -> Response:
        server.stats.reset()
        return Response.empty(204)

    def set_faults(request: Request, _: re.Match[str]) -> Response:
        payload = request.json() or {}
        server.faults.configure(payload)
        return Response.json(200, server.faults.describe())

    def get_faults(request: Request, _: re.Match[str]) -> Response:
        return Response.json(200, server.faults.describe())

    def clear_faults(request: Request, _: re.Match[str]) -> Response:
        server.faults.clear()
        return Response.empty(204)

    def clock(request: Request, _: re.Match[str]) -> Response:
        payload = request.json() or {}
        emulator.clock.configure(payload)
        return Response.json(200, emulator.clock.describe())

    def get_clock(request: Request, _: re.Match[str]) -> Response:
        return Response.json(200, emulator.clock.describe())

    return [
        route("POST", r"/reset", "reset", reset),
        route("POST", r"/seed", "seed", seed),
        route("GET", r"/state", "state", state),
        route("GET", r"/config", "config", get_config),
        route("POST", r"/config", "config", set_config),
        route("GET", r"/stats", "stats", stats),
        route("DELETE", r"/stats", "stats", clear_stats),
        route("GET", r"/faults", "faults", get_faults),
        route("POST", r"/faults", "faults", set_faults),
        route("DELETE", r"/faults", "faults", clear_faults),
        route("GET", r"/clock", "clock", get_clock),
        route("POST", r"/clock", "clock", clock),
    ]


class _TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        owner: EmulatorServer,
        tls: TlsMaterial,
    ) -> None:
        self.owner = owner
        self.ssl_context = tls.server_context()
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up, fail handshakes and get reset on purpose: none of it is news.
        pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ConnectorEmulator/1.0"
    sys_version = ""
    timeout = 120
    server: _TlsHttpServer

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        # Without NODELAY, headers and body leave in two segments and the client's delayed ACK
        # adds ~40 ms to every response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = self.server.ssl_context.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _read_body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        request = Request(
            method=self.command,
            target=self.path,
            headers=Headers(self.headers.items()),
            body=self._read_body(),
        )
        response = self.server.owner.dispatch(request)
        if response.reset_connection:
            self._reset()
            return
        self.send_response_only(response.status)
        names = {name.lower() for name, _ in response.headers}
        for name, value in response.headers:
            self.send_header(name, value)
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)
        self.wfile.flush()

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: what a client sees as
        # "connection reset by peer".
        self.close_connection = True
        try:
            raw = self.connection
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
        except OSError:
            pass

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815
