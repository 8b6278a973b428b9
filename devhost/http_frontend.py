"""Serves the app's HTTP functions on loopback, with routes, methods and key checks of the host.

CORS as the Functions host's (``Host.CORS`` of ``local.settings.json``, the Function App's CORS
setting in Azure): a request whose ``Origin`` is allowed gets ``Access-Control-Allow-Origin``
naming it, and a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) of a route path is
answered by the host itself, before any key check; ``*`` allows every origin. Other origins get
no CORS headers, so the browser refuses to hand the answer to the page.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from devhost.app_index import HttpFunction
from devhost.invocation import Counters, Invoker
from shared.errors import ConfigError

logger = logging.getLogger("devhost")
FUNCTION_KEY_SETTING = "DEVHOST_FUNCTION_KEY"
MASTER_KEY_SETTING = "DEVHOST_MASTER_KEY"
HTTP_TIMEOUT_S = 230.0  # the front end of Azure gives up on a request after 230 s
CORS_MAX_AGE_S = 600
_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)(?:\([^)]*\))?)?(\?)?\}")
_CONSTRAINTS = {
    "int": r"-?\d+", "long": r"-?\d+", "double": r"-?\d+(?:\.\d+)?", "float": r"-?\d+(?:\.\d+)?",
    "bool": r"(?i:true|false)", "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}",
}


@dataclass(frozen=True, slots=True)
class Route:
    function: HttpFunction
    template: str
    pattern: re.Pattern[str]
    specificity: tuple[int, int]


def compile_route(function: HttpFunction, prefix: str) -> Route:
    """``{name}``, ``{name:int}``, ``{name?}`` and ``{*rest}`` templates, case-insensitive."""
    template = "/".join(part for part in (prefix.strip("/"), function.route.strip("/")) if part)
    regex, position, parameters, catch_all = "", 0, 0, 0
    for match in _PARAMETER.finditer(template):
        regex += re.escape(template[position:match.start()])
        star, name, constraint, optional = match.groups()
        if constraint and constraint not in _CONSTRAINTS:
            raise ConfigError(f"function {function.name}: route constraint {constraint!r}"
                              " is not supported by the dev host")
        body = ".*" if star else _CONSTRAINTS.get(constraint or "", "[^/]+")
        group = f"(?P<{name}>{body})"
        if optional or star:
            if regex.endswith("/"):
                regex = regex[:-1] + f"(?:/{group})?"
            else:
                regex += f"{group}?"
        else:
            regex += group
        parameters += 1
        catch_all += bool(star)
        position = match.end()
    regex += re.escape(template[position:])
    pattern = re.compile(f"/{regex}/?", re.IGNORECASE)
    return Route(function, template, pattern, (catch_all, parameters))


class HttpFrontend:
    """A threading HTTP server; ``port`` 0 picks a free one (read ``self.port`` after start)."""

    def __init__(
        self,
        functions: Sequence[HttpFunction],
        invoker: Invoker,
        counters: Counters,
        *,
        route_prefix: str,
        keys: dict[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
        trigger_timer: Callable[[str], bool] | None = None,
        cors_origins: str | Sequence[str] | None = None,
    ) -> None:
        """``cors_origins``: origins allowed to call the routes from a browser, a sequence or
        ``Host.CORS``'s comma-separated text (``*``: any)."""
        self._cors_origins: set[str] = set()
        self.allow_origins(cors_origins)
        self._routes = sorted((compile_route(f, route_prefix) for f in functions),
                              key=lambda route: route.specificity)
        levels = {f.auth_level for f in functions}
        if levels & {"function", "admin"} and not keys.get(FUNCTION_KEY_SETTING):
            raise ConfigError(f"missing app setting {FUNCTION_KEY_SETTING}: the key that"
                              " function-level HTTP routes require (code= or x-functions-key)")
        self._function_keys = [k for k in (keys.get(FUNCTION_KEY_SETTING),
                                           keys.get(MASTER_KEY_SETTING)) if k]
        self._master_keys = [k for k in (keys.get(MASTER_KEY_SETTING),) if k]
        self._invoker = invoker
        self._counters = counters
        self._trigger_timer = trigger_timer
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def allow_origins(self, origins: str | Sequence[str] | None) -> None:
        """Allow browser calls from more origins (``scheme://host[:port]``, or ``*``)."""
        if origins is None:
            return
        listed = origins.split(",") if isinstance(origins, str) else list(origins)
        self._cors_origins.update(_origin(o) for o in listed if o.strip())

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="http", daemon=True)
        self._thread.start()
        for route in self._routes:
            methods = ",".join(sorted(route.function.methods or {"*"}))
            logger.info("http: %s %s/%s -> %s (%s)", methods, self.base_url,
                        route.template, route.function.name,
                        route.function.auth_level)

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever, so only if it runs
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One request, transport-free: returns status, headers and body."""
        started = time.monotonic()
        self._counters.add(http_requests=1)
        origin = next((v for k, v in headers.items() if k.lower() == "origin"), None)
        preflight = self._preflight(method.upper(), target, headers, origin)
        if preflight is not None:
            status, out_headers, out_body = preflight
        else:
            status, out_headers, out_body = self._dispatch(method.upper(), target, headers, body)
            if self._origin_allowed(origin):
                out_headers = {**out_headers, "Access-Control-Allow-Origin": str(origin),
                               "Vary": "Origin"}
        logger.info("HTTP %s %s -> %d in %.0f ms", method, urlsplit(target).path, status,
                    (time.monotonic() - started) * 1000)
        return status, out_headers, out_body

    def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        lowered = {k.lower(): v for k, v in headers.items()}
        key = lowered.get("x-functions-key") or params.get("code") or ""
        admin = re.fullmatch(r"/admin/functions/([^/]+)", parts.path)
        if admin and method == "POST" and self._trigger_timer is not None:
            if not _key_matches(key, self._master_keys):
                return 401, {}, b""
            found = self._trigger_timer(admin.group(1))
            return (202 if found else 404), {}, b""
        for route in self._routes:
            match = route.pattern.fullmatch(parts.path)
            if match is None:
                continue
            function = route.function
            if function.methods is not None and method not in function.methods:
                continue
            allowed = {"anonymous": None, "function": self._function_keys,
                       "admin": self._master_keys}.get(function.auth_level, self._function_keys)
            if allowed is not None and not _key_matches(key, allowed):
                return 401, {}, b""
            route_params = {k: v for k, v in match.groupdict().items() if v is not None}
            request = func.HttpRequest(
                method, f"http://127.0.0.1:{self.port}{target}", headers=headers,
                params=params, route_params=route_params, body=body,
            )
            outcome = self._invoker.invoke(function.name, function.call,
                                           {function.arg_name: request},
                                           wants_context=function.wants_context,
                                           detail=f" for {method} {parts.path}")
            if not outcome.succeeded:
                return 500, {}, b""
            return _response(outcome.result)
        return 404, {}, b""

    def _origin_allowed(self, origin: str | None) -> bool:
        if not origin or not self._cors_origins:
            return False
        return "*" in self._cors_origins or _origin(origin) in self._cors_origins

    def _preflight(
        self, method: str, target: str, headers: dict[str, str], origin: str | None
    ) -> tuple[int, dict[str, str], bytes] | None:
        """The host's answer to a CORS preflight of a route path; None when it is none."""
        lowered = {k.lower(): v for k, v in headers.items()}
        wanted = lowered.get("access-control-request-method", "").strip().upper()
        if method != "OPTIONS" or not wanted or not origin:
            return None
        path = urlsplit(target).path
        routes = [r for r in self._routes if r.pattern.fullmatch(path)]
        if not routes:
            return None
        methods = set()
        for route in routes:
            methods |= set(route.function.methods or {wanted})
        if not self._origin_allowed(origin) or wanted not in methods:
            return 204, {"Vary": "Origin"}, b""  # no CORS headers: the browser refuses
        allow_headers = lowered.get("access-control-request-headers", "").strip()
        out = {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
               "Access-Control-Allow-Methods": ", ".join(sorted(methods)),
               "Access-Control-Max-Age": str(CORS_MAX_AGE_S)}
        if allow_headers:
            out["Access-Control-Allow-Headers"] = allow_headers
        return 204, out, b""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        frontend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this the body waits for the
            # client's delayed acknowledgement (about 40 ms a response on Linux).
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = frontend.handle(
                    self.command, self.path, dict(self.headers.items()), body
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the front end logs each request itself

        return Handler


def _origin(value: str) -> str:
    """An origin as compared: trimmed, without a trailing slash, scheme and host lower-cased."""
    return value.strip().rstrip("/").lower()


def _key_matches(presented: str, keys: Sequence[str]) -> bool:
    return bool(presented) and any(hmac.compare_digest(presented, key) for key in keys)


def _response(result: object) -> tuple[int, dict[str, str], bytes]:
    if isinstance(result, func.HttpResponse):
        headers = {k: v for k, v in result.headers.items()}
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}"
        return int(result.status_code), headers, result.get_body()
    if isinstance(result, str | bytes):
        text = result.encode("utf-8") if isinstance(result, str) else result
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, text
    if result is None:
        return 204, {}, b""
    logger.error("an HTTP function returned %s, not an HttpResponse", type(result).__name__)
    return 500, {}, b""
