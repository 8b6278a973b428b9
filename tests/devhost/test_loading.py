from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from devhost.app_index import load_function_app
from devhost.host_config import HostConfig, parse_host_config
from devhost.local_settings import LocalSettings, load_local_settings, parse_local_settings
from shared.errors import ConfigError

APP_SOURCE = textwrap.dedent('''
    import azure.functions as func

    app = func.FunctionApp()

    @app.function_name("Hello")
    @app.route(route="hello", auth_level=func.AuthLevel.ANONYMOUS)
    def hello(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("hi")
''')


class TestLocalSettings:
    def test_reads_values_and_host(self, tmp_path: Path) -> None:
        path = tmp_path / "local.settings.json"
        path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "s3cret-value"},
                                    "Host": {"LocalHttpPort": 7072}}))
        settings = load_local_settings(path)
        assert settings.values == {"A": "s3cret-value"} and settings.host == {"LocalHttpPort": 7072}
        assert "s3cret" not in repr(settings)  # values may be secrets

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ([], "expected a JSON object"),
            ({"IsEncrypted": True, "Values": {}}, "encrypted"),
            ({"Values": []}, "Values must be an object"),
            ({"Values": {"PORT": 1}}, "setting PORT must be a string"),
            ({"Values": {}, "Host": "x"}, "Host must be an object"),
        ],
    )
    def test_bad_files_are_refused(self, raw: object, message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            parse_local_settings(raw)

    def test_missing_and_broken_files(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            load_local_settings(tmp_path / "nope.json")
        (tmp_path / "bad.json").write_text("{")
        with pytest.raises(ConfigError, match="not valid JSON"):
            load_local_settings(tmp_path / "bad.json")

    def test_resolves_every_expression_and_names_the_missing_one(self) -> None:
        settings = LocalSettings({"Q": "orders", "ENV": "dev"})
        assert settings.resolve("%Q%-%ENV%", what="x") == "orders-dev"
        assert settings.resolve("literal", what="x") == "literal"
        with pytest.raises(ConfigError, match="missing app setting NOPE: function F uses %NOPE%"):
            settings.resolve("%NOPE%", what="function F")


class TestHostJson:
    def test_defaults(self) -> None:
        assert parse_host_config({"version": "2.0"}) == HostConfig()

    def test_extension_5_keys(self) -> None:
        config = parse_host_config({
            "functionTimeout": "00:10:00",
            "extensions": {"http": {"routePrefix": "/v1/"},
                           "serviceBus": {"maxConcurrentCalls": 4,
                                          "maxAutoLockRenewalDuration": "00:02:30",
                                          "maxDeliveryCount": 3}},
        })
        assert (config.route_prefix, config.max_concurrent_calls, config.function_timeout_s,
                config.max_auto_lock_renewal_s, config.max_delivery_count) == (
            "v1", 4, 600.0, 150.0, 3)

    def test_legacy_message_handler_options_and_unbounded_timeout(self) -> None:
        config = parse_host_config({
            "functionTimeout": "-1",
            "extensions": {"serviceBus": {"messageHandlerOptions": {"maxConcurrentCalls": 2}}},
        })
        assert config.max_concurrent_calls == 2 and config.function_timeout_s is None

    @pytest.mark.parametrize(
        "raw",
        [
            {"functionTimeout": "24:00:00"},
            {"functionTimeout": "ten minutes"},
            {"extensions": {"serviceBus": {"maxConcurrentCalls": 0}}},
            {"extensions": {"serviceBus": {"maxConcurrentCalls": "4"}}},
            {"extensions": []},
        ],
    )
    def test_bad_values_are_refused(self, raw: dict[str, object]) -> None:
        with pytest.raises(ConfigError):
            parse_host_config(raw)


class TestLoadApp:
    def test_loads_a_script_by_path(self, tmp_path: Path) -> None:
        (tmp_path / "my_app.py").write_text(APP_SOURCE)
        app = load_function_app("my_app.py", app_dir=tmp_path)
        assert [f.get_function_name() for f in app.get_functions()] == ["Hello"]

    def test_no_app_and_two_apps_are_errors(self, tmp_path: Path) -> None:
        (tmp_path / "empty_app.py").write_text("import azure.functions as func\n")
        with pytest.raises(ConfigError, match="could not find a top-level func.FunctionApp"):
            load_function_app("empty_app.py", app_dir=tmp_path)
        (tmp_path / "two_apps.py").write_text(APP_SOURCE + "\nother = func.FunctionApp()\n")
        with pytest.raises(ConfigError, match="more than one function app"):
            load_function_app("two_apps.py", app_dir=tmp_path)

    def test_missing_script(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            load_function_app("missing.py", app_dir=tmp_path)
