from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import azure.functions as func
import pytest

from devhost.host import DevHost, HostOptions
from devhost.host_config import HostConfig
from devhost.local_settings import LocalSettings
from shared.errors import ConfigError
from tests.devhost.fixture_app import SETTINGS, Recorder, build_app

MakeHost = Callable[..., DevHost]


def call(
    host: DevHost, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    assert host.http is not None
    request = urllib.request.Request(host.http.base_url + path, data=body, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


@pytest.fixture
def host(make_host: MakeHost) -> DevHost:
    return make_host(queues=False)


class TestRoutes:
    def test_route_params_and_query_reach_a_real_http_request(self, host: DevHost) -> None:
        status, body = call(host, "/api/items/42/a/b?code=function-key-1&x=1")
        assert status == 200
        assert json.loads(body) == {"route": {"id": "42", "rest": "a/b"},
                                    "params": {"code": "function-key-1", "x": "1"}}

    def test_optional_catch_all_and_case_insensitive_path(self, host: DevHost) -> None:
        status, body = call(host, "/API/Items/7?code=function-key-1")
        assert status == 200 and json.loads(body)["route"] == {"id": "7"}

    @pytest.mark.parametrize(
        ("path", "method"),
        [("/api/items/abc?code=function-key-1", "GET"),  # {id:int} constraint
         ("/api/items/1?code=function-key-1", "POST"),  # method not allowed -> no route
         ("/items/1?code=function-key-1", "GET"),  # no api/ prefix
         ("/api/nothing", "GET")],
    )
    def test_no_matching_route_is_404(self, host: DevHost, path: str, method: str) -> None:
        assert call(host, path, method=method, body=b"" if method == "POST" else None)[0] == 404

    def test_context_argument_and_any_method(self, host: DevHost) -> None:
        assert call(host, "/api/ping", method="DELETE") == (200, b"pong from Ping")

    def test_function_exception_is_500_and_counted(self, host: DevHost) -> None:
        assert call(host, "/api/fail", method="POST", body=b"{}")[0] == 500
        assert host.counters.snapshot()["functions"]["Fail"]["failures"] == 1

    def test_route_prefix_from_host_json(self, make_host: MakeHost) -> None:
        host = make_host(queues=False, config=HostConfig(route_prefix=""))
        assert call(host, "/ping")[0] == 200
        assert call(host, "/api/ping")[0] == 404


class TestKeys:
    @pytest.mark.parametrize(
        ("suffix", "headers", "status"),
        [
            ("", {}, 401),
            ("?code=wrong", {}, 401),
            ("?code=function-key-1", {}, 200),
            ("?code=master-key-1", {}, 200),
            ("", {"x-functions-key": "function-key-1"}, 200),
            ("", {"X-Functions-Key": "nope"}, 401),
        ],
    )
    def test_function_level_needs_a_key(
        self, host: DevHost, suffix: str, headers: dict[str, str], status: int
    ) -> None:
        assert call(host, f"/api/items/1{suffix}", headers=headers)[0] == status

    def test_refused_request_does_not_run_the_function(self, host: DevHost) -> None:
        call(host, "/api/items/1")
        assert "GetItem" not in host.counters.snapshot()["functions"]

    def test_admin_endpoint_runs_a_timer_with_the_master_key_only(
        self, host: DevHost, recorder: Recorder
    ) -> None:
        assert call(host, "/admin/functions/Tick?code=function-key-1", method="POST",
                    body=b"{}")[0] == 401
        assert call(host, "/admin/functions/Tick", method="POST", body=b"{}",
                    headers={"x-functions-key": "master-key-1"})[0] == 202
        host.timers.join()
        assert len(recorder.timer_calls) == 1
        assert call(host, "/admin/functions/Nope?code=master-key-1", method="POST",
                    body=b"{}")[0] == 404

    def test_missing_function_key_setting_is_a_clear_error(
        self, recorder: Recorder, tmp_path: object
    ) -> None:
        values = {k: v for k, v in SETTINGS.items() if k != "DEVHOST_FUNCTION_KEY"}
        with pytest.raises(ConfigError, match="missing app setting DEVHOST_FUNCTION_KEY"):
            DevHost(build_app(recorder), LocalSettings(values),
                    options=HostOptions(http_port=0, queue_dir=str(tmp_path)))

    def test_anonymous_only_app_needs_no_key(self, tmp_path: object) -> None:
        app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

        @app.route(route="hello")
        def hello(req: func.HttpRequest) -> str:
            return "hi " + req.params.get("name", "")

        host = DevHost(app, LocalSettings({}),
                       options=HostOptions(http_port=0, queue_dir=str(tmp_path)))
        host.start()
        try:
            assert call(host, "/api/hello?name=x") == (200, b"hi x")
        finally:
            host.stop()
