"""The CRM users' Dataverse calls share one connection pool but never a cookie."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.adapters.dataverse.records_as_user import DataverseRecordsAsUser
from shared.config import DataverseSettings, HttpSettings


class _SetsCookies(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        type(self).seen.append(self.headers.get("Cookie"))
        self.send_response(200)
        self.send_header("Set-Cookie", "ARRAffinity=user-one; Path=/")
        self.send_header("Set-Cookie", "ReqClientId=abc; Path=/; Domain=127.0.0.1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SetsCookies)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_a_cookie_one_user_is_given_never_goes_out_with_the_next(server: str) -> None:
    records = DataverseRecordsAsUser(DataverseSettings("https://contoso.crm.dynamics.com"),
                                     HttpSettings(), lambda assertion, scope: "token")
    first, second = records._client("user-one"), records._client("user-two")
    assert first._caller.session is second._caller.session  # one pool for every user
    _SetsCookies.seen = []
    first._caller.session.get(server, timeout=5)
    second._caller.session.get(server, timeout=5)
    assert _SetsCookies.seen == [None, None]
    assert len(records._session.cookies) == 0
