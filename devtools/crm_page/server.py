"""A local stand-in for a Dynamics 365 page that hosts the Automation Programs dialog.

It serves, on an origin of its own (as CRM serves web resources on the organisation's origin,
not the Function App's, so the dialog's calls to the connector are cross-origin as in Dynamics):

- ``/main.html?entity=contact&id=<guid>`` a record form, ``/main.html?entity=lead&view=grid``
  a grid of the page's records, each with the ribbon's **Automation Programs** button. The page
  runs the solution's real ``command.js`` on a small ``Xrm`` stand-in (``xrm.js``): navigateTo
  opens the web resource in a modal iframe with ``data``, ``getGlobalContext().userSettings``
  names the signed-in user, ``WebApi.retrieveRecord`` reads the page's records.
- ``/WebResources/...`` the solution's web resources, from ``infra/dynamics/solution``.
- ``GET /_crm/context`` what the page shows: the user, the records, the connector's API URL.
- ``POST /_crm/token`` the signed-in user's token for the connector API, minted by the Entra
  emulator's admin route (in Dynamics, MSAL.js gets it with the user's CRM sign-in instead).

Run beside ``make run``: ``python -m devtools.crm_page --api http://127.0.0.1:7071/api
--entra https://127.0.0.1:7301 --ca .emulators/emulator-ca.pem`` (the dev host must allow the
page's origin: ``Host.CORS`` of local.settings.json).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
PAGE_DIR = Path(__file__).resolve().parent / "static"
WEB_RESOURCES = ROOT / "infra" / "dynamics" / "solution" / "WebResources"
DEFAULT_USER = "ada.lovelace@connectordev.onmicrosoft.com"
DEFAULT_AUDIENCE = "api://connector"
NO_CONFIG = b"/* Local: the hosting page provides window.ecConnectorConfig. */\n"


@dataclass(frozen=True, slots=True)
class PageRecord:
    """A contact or lead the page shows (form or grid row)."""

    entity: str  # contact | lead
    id: str
    name: str
    email: str | None = None


class CrmPage:
    """The page server on loopback; ``port`` 0 picks a free one. A context manager."""

    def __init__(
        self,
        *,
        api_base_url: str,
        entra_url: str,
        ca_bundle: str | None,
        records: Sequence[PageRecord] = (),
        user: str = DEFAULT_USER,
        audience: str = DEFAULT_AUDIENCE,
        host: str = "127.0.0.1",
        port: int = 0,
        close_delay_ms: int = 1000,
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.entra_url = entra_url.rstrip("/")
        self.ca_bundle = ca_bundle
        self.records = list(records)
        self.user = user
        self.audience = audience
        self.close_delay_ms = close_delay_ms
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, entity: str, *, record_id: str | None = None, grid: bool = False) -> str:
        if grid:
            return f"{self.origin}/main.html?entity={entity}&view=grid"
        return f"{self.origin}/main.html?entity={entity}&id={record_id}"

    def __enter__(self) -> CrmPage:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="crm-page", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self._session.close()

    # --- answers ---------------------------------------------------------------------------------
    def context(self) -> dict[str, Any]:
        return {"user": self.user, "apiBaseUrl": self.api_base_url,
                "closeDelayMs": self.close_delay_ms,
                "records": [asdict(record) for record in self.records]}

    def token(self) -> tuple[int, dict[str, Any]]:
        """The user's token for the connector API, from the Entra emulator's mint."""
        response = self._session.post(
            f"{self.entra_url}/_emulator/token",
            json={"audience": self.audience, "user": self.user},
            verify=self.ca_bundle if self.ca_bundle else True, timeout=30)
        if response.status_code != 200:
            return 502, {"error": f"the Entra emulator answered {response.status_code}"}
        return 200, {"accessToken": response.json()["access_token"]}

    def static(self, path: str) -> tuple[int, str, bytes]:
        if path.startswith("/WebResources/"):
            base, relative = WEB_RESOURCES, path[len("/WebResources/"):]
        else:
            base, relative = PAGE_DIR, path.lstrip("/")
        target = (base / unquote(relative)).resolve()
        if not target.is_relative_to(base.resolve()) or not target.is_file():
            if path.endswith("/config.js"):
                return 200, "text/javascript", NO_CONFIG
            return 404, "text/plain", b"not found"
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind == "application/javascript":
            kind = "text/javascript"
        return 200, kind, target.read_bytes()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        page = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, payload: object) -> None:
                self._send(status, "application/json", json.dumps(payload).encode("utf-8"))

            def do_GET(self) -> None:  # noqa: N802 (the handler's protocol)
                path = urlsplit(self.path).path
                if path == "/_crm/context":
                    self._json(200, page.context())
                    return
                status, kind, body = page.static("/main.html" if path == "/" else path)
                self._send(status, kind, body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if urlsplit(self.path).path != "/_crm/token":
                    self._send(404, "text/plain", b"not found")
                    return
                try:
                    status, payload = page.token()
                except requests.RequestException as error:
                    status, payload = 502, {"error": type(error).__name__}
                self._json(status, payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.crm_page", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default="http://127.0.0.1:7071/api")
    parser.add_argument("--entra", default="https://127.0.0.1:7301")
    parser.add_argument("--ca", default=str(ROOT / ".emulators" / "emulator-ca.pem"))
    parser.add_argument("--user", default=DEFAULT_USER)
    parser.add_argument("--port", type=int, default=7310)
    parser.add_argument("--records", help="a JSON file: [{entity, id, name, email}]")
    args = parser.parse_args(argv)
    records = [PageRecord(**r) for r in json.loads(Path(args.records).read_text())] \
        if args.records else []
    with CrmPage(api_base_url=args.api, entra_url=args.entra, ca_bundle=args.ca,
                 records=records, user=args.user, port=args.port) as page:
        print(f"CRM page on {page.origin} (allow it in Host.CORS); Ctrl-C stops", flush=True)
        threading.Event().wait()
    return 0
