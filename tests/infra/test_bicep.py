"""The infrastructure as code (``infra/``) parses, passes checkov, and agrees with the app.

- Every ``.bicep`` file parses with pycep-parser, the parser checkov uses (a file it cannot parse
  is one checkov silently skips: checkov exits 0 on parsing errors).
- checkov (framework bicep) reports no failed check, no parsing error, and parsed as many files
  as there are on disk; every ``checkov:skip`` is listed with its reason in ``infra/README.md``.
- The queues are the app's (names, sessions as the triggers have them, a ``-deadletter`` queue
  beside each), their max delivery count equals the app settings the appliers read, and the lock
  and duplicate detection times fit host.json.
- Every app setting the code reads is set by the Bicep or listed in ``infra/README.md`` with its
  default.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.servicebus.message_codec import dead_letter_queue
from shared.config import SETTINGS, QueueSettings, SyncSettings
from tests.infra.bicep_model import (
    BicepFile,
    Unresolved,
    iso_duration_seconds,
    parameter_file_values,
    parse,
    timespan_seconds,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
README = INFRA / "README.md"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
CHECKOV_TIMEOUT_S = 600

# Settings Flex Consumption rejects or ignores (the runtime comes from functionAppConfig), and
# connection strings, which cannot work: shared key access and Service Bus local auth are off.
FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "FUNCTIONS_WORKER_PROCESS_COUNT", "WEBSITE_NODE_DEFAULT_VERSION",
    "AzureWebJobsStorage", "ServiceBusConnection", "STATE_STORAGE_CONNECTION",
}

# siteConfig properties of the other plans that Flex Consumption rejects (ARM error 51021) or
# has no use for: the runtime and scaling live in functionAppConfig.
FLEX_REJECTED_SITE_CONFIG = {
    "ftpsState", "linuxFxVersion", "windowsFxVersion", "netFrameworkVersion", "alwaysOn",
    "use32BitWorkerProcess", "preWarmedInstanceCount", "functionsRuntimeScaleMonitoringEnabled",
    "functionAppScaleLimit", "minimumElasticInstanceCount",
}

# The built-in roles the connector's identity holds, and no other.
EXPECTED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",  # Azure Service Bus Data Receiver
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",  # Azure Service Bus Data Sender
    "4633458b-17de-408a-b874-0445c86b69e6",  # Key Vault Secrets User
    "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher
}


# ---- the model of the deployment ---------------------------------------------------------------

@cache
def main() -> BicepFile:
    return BicepFile(INFRA / "main.bicep", parameter_file_values(INFRA / "main.parameters.json"))


@cache
def service_bus() -> BicepFile:
    return main().module("serviceBus")


@cache
def function_app() -> BicepFile:
    return main().module("functionApp")


def app_settings() -> dict[str, Any]:
    """The app settings main.bicep sets (the Key Vault references of the dotdigital passwords,
    named at deployment, come on top)."""
    settings = main().variable("appSettings")
    assert isinstance(settings, dict), settings
    return settings


def batch_queues() -> list[dict[str, Any]]:
    return service_bus().resource("batchQueues")


def host_json() -> dict[str, Any]:
    return dict(json.loads((ROOT / "host.json").read_text()))


@cache
def trigger_manifest() -> dict[str, dict[str, Any]]:
    """The app's functions and bindings, read in a fresh interpreter (``get_functions`` may be
    called once per app object, and the import must need no settings)."""
    script = textwrap.dedent(
        """
        import json, function_app
        out = {}
        for fn in function_app.app.get_functions():
            out[fn.get_function_name()] = {
                "trigger": fn.get_trigger().get_binding_name(),
                "bindings": [b.get_dict_repr() for b in fn.get_bindings()],
            }
        print(json.dumps(out, default=str))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def queue_triggers() -> dict[str, dict[str, Any]]:
    """Queue trigger bindings by the app setting that names their queue."""
    triggers = {}
    for function in trigger_manifest().values():
        for binding in function["bindings"]:
            if binding["type"] == "serviceBusTrigger":
                setting = re.fullmatch(r"%(\w+)%", binding["queueName"])
                assert setting, f"queue names come from app settings: {binding['queueName']}"
                triggers[setting.group(1)] = binding
    return triggers


def readme_table(title: str) -> list[list[str]]:
    """The rows of the first table under the ``## title`` heading of infra/README.md."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"infra/README.md has no section '## {title}'"
    rows = []
    for line in match.group(1).splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[\s|:-]+\|", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header


def backticked(cell: str) -> str | None:
    match = re.fullmatch(r"`([^`]+)`", cell)
    return match.group(1) if match else None


# ---- parsing -----------------------------------------------------------------------------------

def test_the_infra_has_a_main_template_and_its_modules() -> None:
    names = {path.relative_to(INFRA).as_posix() for path in BICEP_FILES}
    assert "main.bicep" in names
    used = {module["detail"]["path"] for module in main().section("modules").values()}
    modules = {name for name in names if name.startswith("modules/")}
    assert used == modules, "every module is used by main.bicep, and every one it uses exists"
    for module in main().section("modules").values():
        assert module["type"] == "local", "registry modules are neither scanned nor expanded"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_bicep_file_parses(path: Path) -> None:
    try:
        tree = parse(path)
    except Exception as error:  # pycep raises lark's errors or ValueError
        pytest.fail(f"pycep-parser cannot parse {path.relative_to(ROOT)} (checkov would skip it "
                    f"silently): {type(error).__name__}: {error}")
    assert tree.get("resources") or tree.get("modules"), "a template declares something"


def test_a_file_pycep_cannot_parse_fails_the_parse_check(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bicep"
    broken.write_text("resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n")
    with pytest.raises(Exception):  # noqa: B017 - whatever pycep raises
        parse(broken)


# ---- checkov -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckovScan:
    returncode: int
    report: dict[str, Any]
    files_to_parse: int | None
    files_parsed: int | None
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.report["summary"])

    def results(self, kind: str) -> list[dict[str, Any]]:
        return list(self.report["results"].get(kind) or [])

    def problems(self, files_on_disk: int) -> list[str]:
        """Why the scan does not show that every file was parsed and passed; [] if it does."""
        problems = []
        if self.summary["failed"]:
            failed = sorted(f"{r['check_id']} {r['file_path']} {r['resource']}"
                            for r in self.results("failed_checks"))
            problems.append(f"{self.summary['failed']} failed checks: {failed}")
        if self.summary["parsing_errors"] or self.results("parsing_errors"):
            problems.append(f"files checkov could not parse: {self.results('parsing_errors')}")
        if self.files_to_parse != files_on_disk or self.files_parsed != files_on_disk:
            problems.append(f"checkov parsed {self.files_parsed} of {self.files_to_parse} files; "
                            f"{files_on_disk} .bicep files are on disk")
        if self.returncode != 0:
            problems.append(f"checkov exited {self.returncode}: {self.stderr[-2000:]}")
        return problems


def checkov_executable() -> str:
    found = (shutil.which("checkov", path=str(Path(sys.executable).parent))
             or shutil.which("checkov"))
    if found is None:
        pytest.fail("checkov is not installed in this environment: "
                    "`.venv/bin/pip install -r requirements-dev.txt` installs it (make test does)")
    return found


def run_checkov(directory: Path) -> CheckovScan:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("BC_", "PRISMA_", "CKV_"))}  # no platform upload, no settings
    # INFO logs say how many files the Bicep runner parsed; parsing errors fail the exit code.
    env.update(LOG_LEVEL="INFO", CKV_PARSE_ERROR_FAIL="true")
    result = subprocess.run(
        [checkov_executable(), "--directory", str(directory), "--framework", "bicep",
         "--skip-download", "--output", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHECKOV_TIMEOUT_S,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"checkov printed no JSON report (exit {result.returncode}): "
                    f"{result.stdout[-1000:]} {result.stderr[-2000:]}")
    if isinstance(report, list):  # one report per framework; only bicep runs
        assert len(report) == 1, [r.get("check_type") for r in report]
        report = report[0]
    if report.get("check_type") != "bicep":
        pytest.fail(f"checkov found nothing to scan as Bicep in {directory}: {report}")

    def logged(pattern: str) -> int | None:
        match = re.search(pattern, result.stderr)
        return int(match.group(1)) if match else None

    return CheckovScan(
        returncode=result.returncode, report=report,
        files_to_parse=logged(r"\[bicep\] start to parse (\d+) files"),
        files_parsed=logged(r"\[bicep\] successfully parsed (\d+) files"),
        stderr=result.stderr,
    )


@pytest.fixture(scope="module")
def checkov_scan() -> CheckovScan:
    return run_checkov(INFRA)


def test_checkov_passes_and_parsed_every_file(checkov_scan: CheckovScan) -> None:
    assert checkov_scan.problems(len(BICEP_FILES)) == []
    reported = {r["file_path"].lstrip("/")
                for kind in ("passed_checks", "failed_checks", "skipped_checks")
                for r in checkov_scan.results(kind)}
    on_disk = {path.relative_to(INFRA).as_posix() for path in BICEP_FILES}
    assert reported <= on_disk
    # The files with resources checkov has checks for (the site, storage, Key Vault) are scanned.
    assert {"modules/functionapp.bicep", "modules/storage.bicep",
            "modules/keyvault.bicep"} <= reported
    assert checkov_scan.summary["passed"] > 0


def test_the_checkov_check_catches_a_file_it_cannot_parse(tmp_path: Path) -> None:
    shutil.copy(INFRA / "modules" / "keyvault.bicep", tmp_path / "good.bicep")
    # A compile-time import: valid Bicep today, but pycep-parser 0.5.1 cannot parse it.
    (tmp_path / "imports.bicep").write_text(
        "import { names } from 'good.bicep'\nparam location string\n")
    problems = run_checkov(tmp_path).problems(files_on_disk=2)
    assert any("could not parse" in problem for problem in problems), problems
    assert any("parsed 1 of 2 files" in problem for problem in problems), problems


def bicep_skips() -> dict[tuple[str, str], str]:
    """(check id, file) -> reason of every ``checkov:skip`` comment in the Bicep files."""
    skips = {}
    for path in BICEP_FILES:
        for line in path.read_text().splitlines():
            match = re.search(r"checkov:skip=([A-Za-z0-9_]+)(?::(.*))?", line)
            if match:
                assert line.lstrip().startswith("//"), (
                    f"{path.name}: write skips as // comments ('#' is not a Bicep comment): {line}")
                key = (match.group(1), path.relative_to(INFRA).as_posix())
                assert key not in skips, f"{key} skipped twice"
                skips[key] = (match.group(2) or "").strip()
    return skips


def test_every_checkov_skip_has_its_reason_in_the_readme(checkov_scan: CheckovScan) -> None:
    skips = bicep_skips()
    assert all(skips.values()), f"every skip gives its reason: {skips}"
    documented = {}
    for row in readme_table("checkov skips"):
        check, file = backticked(row[0]), backticked(row[1])
        assert check and file, f"infra/README.md skip rows are | `CHECK` | `file` | reason |: {row}"
        documented[(check, file)] = row[2]
    assert documented == skips, "infra/README.md lists exactly the skips, with the same reasons"
    # Each skip took effect: checkov reports it skipped, with that reason.
    skipped = {(r["check_id"], r["file_path"].lstrip("/")):
               r["check_result"].get("suppress_comment", "").strip()
               for r in checkov_scan.results("skipped_checks")}
    assert skipped == skips


# ---- queues ------------------------------------------------------------------------------------

def test_the_queues_are_the_apps_queues() -> None:
    defaults = QueueSettings()
    expected = {defaults.optin_queue, defaults.suppression_queue, defaults.engagement_queue}
    assert {queue["name"] for queue in batch_queues()} == expected
    settings = app_settings()
    assert settings["OPTIN_QUEUE_NAME"] == defaults.optin_queue
    assert settings["SUPPRESSION_QUEUE_NAME"] == defaults.suppression_queue
    assert settings["ENGAGEMENT_QUEUE_NAME"] == defaults.engagement_queue
    # Every queue trigger reads a queue the Bicep creates, named by a setting the Bicep sets.
    triggers = queue_triggers()
    assert {settings[name] for name in triggers} == expected


def test_sessions_are_required_exactly_where_the_triggers_accept_them() -> None:
    """A session-enabled queue refuses messages without a session id, and a session-aware
    trigger cannot read a queue without sessions: both must agree. The readers publish every
    batch with a session id (one per shard), so all three batch queues use sessions."""
    settings = app_settings()
    sessions = {queue["name"]: queue["properties"]["requiresSession"] for queue in batch_queues()}
    for setting, binding in queue_triggers().items():
        assert sessions[settings[setting]] is bool(binding.get("isSessionsEnabled")), setting


def test_each_queue_has_its_dead_letter_queue_without_sessions() -> None:
    """The app moves batches that can never succeed to ``<queue>-deadletter`` itself, without a
    session id (message_codec.dead_letter_message)."""
    names = [queue["name"] for queue in batch_queues()]
    dead_letters = service_bus().resource("deadLetterQueues")
    assert [queue["name"] for queue in dead_letters] == [dead_letter_queue(n) for n in names]
    for queue in dead_letters:
        assert queue["properties"]["requiresSession"] is False, queue["name"]


def test_every_queue_detects_duplicates_and_dead_letters_expired_messages() -> None:
    for queue in batch_queues() + service_bus().resource("deadLetterQueues"):
        properties = queue["properties"]
        assert properties["requiresDuplicateDetection"] is True, queue["name"]
        assert properties["deadLetteringOnMessageExpiration"] is True, queue["name"]
        assert properties["enablePartitioning"] is False, queue["name"]


def test_max_delivery_counts_equal_the_app_settings() -> None:
    """The appliers count a batch as failed on its last delivery (delivery count == the
    setting); the broker dead-letters it after that one. A setting above the queue's would leave
    the batch's run unfinished, one below would count it failed while deliveries remain."""
    settings = app_settings()
    counts = {queue["name"]: queue["properties"]["maxDeliveryCount"] for queue in batch_queues()}
    for sync in ("OPTIN", "SUPPRESSION", "ENGAGEMENT"):
        queue = settings[f"{sync}_QUEUE_NAME"]
        assert isinstance(counts[queue], int) and counts[queue] >= 1
        assert settings[f"{sync}_MAX_DELIVERY_COUNT"] == str(counts[queue]), sync
    # ... and these are the settings the appliers read.
    assert {f"{sync}_MAX_DELIVERY_COUNT" for sync in ("OPTIN", "SUPPRESSION", "ENGAGEMENT")} <= (
        settings_the_code_reads())


def test_lock_and_duplicate_detection_times_fit_host_json() -> None:
    """What must match is not the lock duration but the renewal: the host renews a message's
    (and a session's) lock up to maxAutoLockRenewalDuration, so that must cover the longest
    invocation (functionTimeout); the lock duration itself (at most 5 minutes) only bounds how
    long a lost worker keeps a session. A batch re-published after a reader was cut off is
    dropped only if the duplicate window outlasts that reader's run."""
    host = host_json()
    function_timeout = timespan_seconds(host["functionTimeout"])
    renewal = timespan_seconds(host["extensions"]["serviceBus"]["maxAutoLockRenewalDuration"])
    assert renewal >= function_timeout
    for queue in batch_queues() + service_bus().resource("deadLetterQueues"):
        properties = queue["properties"]
        lock = iso_duration_seconds(properties["lockDuration"])
        assert 5 <= lock <= 300, f"{queue['name']}: Service Bus allows 5 s to 5 min"
        assert lock < renewal, f"{queue['name']}: renewal must outlast one lock"
        window = iso_duration_seconds(properties["duplicateDetectionHistoryTimeWindow"])
        assert 20 <= window <= 7 * 86400, f"{queue['name']}: Service Bus allows 20 s to 7 days"
        assert window > function_timeout, queue["name"]
        assert iso_duration_seconds(properties["defaultMessageTimeToLive"]) > window


def test_sessions_per_instance_cover_the_shards() -> None:
    """One worker per shard: host.json's maxConcurrentSessions equals the shard counts the
    readers spread batches over (the app's defaults; the Bicep does not change them)."""
    sessions = host_json()["extensions"]["serviceBus"]["maxConcurrentSessions"]
    settings = app_settings()
    assert "OPTIN_SHARDS" not in settings and "SUPPRESSION_SHARDS" not in settings
    assert "ENGAGEMENT_SHARDS" not in settings
    assert SyncSettings().optin_shards == sessions
    assert SyncSettings().suppression_shards == sessions
    assert SyncSettings().engagement_shards == sessions


# ---- app settings ------------------------------------------------------------------------------

def settings_the_code_reads() -> set[str]:
    """Every app setting name the deployed code reads, the binding expressions included: by a
    literal name or a module constant (``CONNECTION_SETTING = "..."``)."""
    names = set(SETTINGS)
    reads = (
        r"\b_(?:required|optional|number|flag)\(\s*environ\s*,\s*",
        r"\benviron(?:\.get\(|\[)\s*",
        r"\bgetenv\(\s*",
    )
    sources = [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py"))]
    for source in sources:
        text = source.read_text()
        constants = dict(re.findall(r'^([A-Z][A-Z0-9_]*)\s*=\s*"([^"]+)"', text, re.M))
        for read in reads:
            names.update(re.findall(read + r'"([^"]+)"', text))
            names.update(constants[name] for name in re.findall(read + r"([A-Z][A-Z0-9_]*)\b", text)
                         if name in constants)
        names.update(re.findall(r'"%(\w+)%"', text))
    return names


def documented_defaults() -> dict[str, str]:
    rows = {}
    for row in readme_table("App settings the Bicep leaves unset"):
        name = backticked(row[0])
        assert name, f"infra/README.md setting rows start with a `NAME`: {row}"
        assert row[1], f"{name}: give its default (or why it is not set)"
        rows[name] = row[1]
    return rows


def test_every_setting_the_code_reads_is_set_or_documented() -> None:
    set_by_bicep = set(app_settings())
    defaults = documented_defaults()
    missing = sorted(name for name in settings_the_code_reads()
                     if name not in set_by_bicep and name not in defaults)
    assert missing == [], "set these in main.bicep or list them in infra/README.md"
    assert sorted(set_by_bicep & set(defaults)) == [], "set and 'left to default' at once"
    assert "ServiceBusConnection__fullyQualifiedNamespace" in set_by_bicep
    assert "AzureWebJobsStorage__accountName" in set_by_bicep


def test_the_readme_lists_the_settings_the_bicep_sets() -> None:
    rows = readme_table("App settings the Bicep sets")
    listed = {backticked(row[0]) for row in rows if backticked(row[0])}
    assert listed == set(app_settings())


def test_no_setting_flex_consumption_rejects_and_no_connection_string() -> None:
    assert sorted(set(app_settings()) & FORBIDDEN_SETTINGS) == []


def test_secrets_are_key_vault_references() -> None:
    reference = main().section("variables")["entraCredentialReference"]["value"]
    assert re.fullmatch(r"@Microsoft\.KeyVault\(SecretUri=\$\{keyVault\.outputs\.vaultUri\}"
                        r"secrets/\$\{entraClientCredentialName\}/\)", reference)
    secret_loop = function_app().section("variables")["secretSettingsList"]["value"]
    assert secret_loop["loop_type"]["detail"]["array_name"] == "keyVaultSecretSettingNames"
    assert secret_loop["config"]["value"].startswith("@Microsoft.KeyVault(SecretUri=${keyVaultUri}")
    # The names come from the comma-separated parameter documented in main.bicep.
    passed = main().section("modules")["functionApp"]["config"]["params"]
    assert passed["keyVaultSecretSettingNames"] == "dotdigitalSecretSettingNames"
    assert main().section("parameters")["dotdigitalSecretSettings"]["decorators"]


@pytest.mark.parametrize("credential", ["secret", "certificate"])
def test_exactly_one_entra_credential_is_set(credential: str) -> None:
    """The app refuses to start with both or neither of them."""
    values = {**parameter_file_values(INFRA / "main.parameters.json"),
              "entraClientCredential": credential}
    settings = BicepFile(INFRA / "main.bicep", values).variable("appSettings")
    both = {"ENTRA_CLIENT_SECRET", "ENTRA_CLIENT_CERTIFICATE"}
    assert set(settings) & both == {f"ENTRA_CLIENT_{credential.upper()}"}


def test_every_setting_reaches_the_site() -> None:
    site = function_app().section("resources")["site"]["config"]
    assert site["properties"]["siteConfig"]["appSettings"] == {
        "function": {"type": "concat",
                     "parameters": {"arg_1": "settingsList", "arg_2": "secretSettingsList"}}}
    settings_loop = function_app().section("variables")["settingsList"]["value"]
    assert settings_loop["loop_type"]["detail"]["object_name"] == "appSettings"
    assert main().section("modules")["functionApp"]["config"]["params"]["appSettings"] == (
        "appSettings")


# ---- resources ---------------------------------------------------------------------------------

def test_the_function_app_is_flex_consumption_python_with_its_own_identity() -> None:
    (site,) = function_app().resource("site")
    (plan,) = function_app().resource("plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert site["kind"] == "functionapp,linux"
    assert site["identity"] == {"type": "SystemAssigned"}
    properties = site["properties"]
    assert properties["httpsOnly"] is True
    runtime = properties["functionAppConfig"]["runtime"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert runtime["name"] == "python"
    assert f'requires-python = ">={runtime["version"]},' in pyproject
    deployment = properties["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"] == {"type": "SystemAssignedIdentity"}
    config = properties["siteConfig"]
    assert config["minTlsVersion"] == "1.2"
    assert "cors" in config
    assert sorted(set(config) & FLEX_REJECTED_SITE_CONFIG) == []
    (scm,) = function_app().resource("scmCredentials")
    assert scm["name"] == "scm" and scm["properties"]["allow"] is False


def test_storage_key_vault_service_bus_and_monitoring_allow_identities_only() -> None:
    (storage,) = main().module("storage").resource("storage")
    assert storage["properties"]["allowSharedKeyAccess"] is False
    assert storage["properties"]["minimumTlsVersion"] == "TLS1_2"
    assert storage["properties"]["allowBlobPublicAccess"] is False
    (vault,) = main().module("keyVault").resource("vault")
    assert vault["properties"]["enableRbacAuthorization"] is True
    assert vault["properties"]["enableSoftDelete"] is True
    assert vault["properties"]["enablePurgeProtection"] is True
    (namespace,) = service_bus().resource("namespace")
    assert namespace["sku"]["name"] == "Standard"  # sessions and duplicate detection need it
    assert namespace["properties"]["disableLocalAuth"] is True
    assert namespace["properties"]["minimumTlsVersion"] == "1.2"
    (insights,) = main().module("monitoring").resource("appInsights")
    assert insights["properties"]["DisableLocalAuth"] is True


@pytest.mark.parametrize("entra_only", [True, False])
def test_telemetry_signs_in_with_the_identity_when_local_auth_is_off(entra_only: bool) -> None:
    values = {**parameter_file_values(INFRA / "main.parameters.json"),
              "appInsightsEntraAuthOnly": entra_only}
    deployment = BicepFile(INFRA / "main.bicep", values)
    (insights,) = deployment.module("monitoring").resource("appInsights")
    assert insights["properties"]["DisableLocalAuth"] is entra_only
    settings = deployment.variable("appSettings")
    assert settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING") == (
        "Authorization=AAD" if entra_only else None)


def test_the_identity_holds_the_least_roles() -> None:
    roles = main().module("roles")
    assert set(roles.variable("roles").values()) == EXPECTED_ROLES
    assignments = roles.resources_of_type("Microsoft.Authorization/roleAssignments")
    assert len(assignments) == 7
    loops = {}
    for name, assignment in assignments.items():
        config = assignment["config"]
        if "loop_type" in config:
            loops[name] = config["loop_type"]["detail"]["array_name"]
            config = config["config"]
        assert config["properties"]["principalType"] == "ServicePrincipal", name
        assert config["properties"]["principalId"] == "principalId", name
    # Receivers only on the batch queues; the dead-letter queues are only sent to.
    assert loops == {"queueReceivers": "receiveQueueNames", "queueSenders": "receiveQueueNames",
                     "deadLetterSenders": "sendOnlyQueueNames"}
    passed = main().section("modules")["roles"]["config"]["params"]
    outputs = service_bus().section("outputs")
    for param, output, resource in (("receiveQueueNames", "queueNames", "batchQueues"),
                                    ("sendOnlyQueueNames", "deadLetterQueueNames",
                                     "deadLetterQueues")):
        assert json.dumps(passed[param]).count(output) == 1, param
        assert resource in json.dumps(outputs[output]["value"]), output


def test_the_parameters_file_sets_declared_parameters() -> None:
    declared = main().section("parameters")
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert sorted(set(values) - set(declared)) == []
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert sorted(required - set(values)) == [], "azd asks for these: put them in the file"
    for name in parameter_file_values(INFRA / "main.parameters.json"):
        assert not isinstance(main().parameter(name), Unresolved), name


def test_azure_yaml_deploys_the_connector_with_this_infra() -> None:
    import yaml  # PyYAML comes with checkov

    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert project["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert project["services"] == {
        "connector": {"project": ".", "language": "python", "host": "function"}}
    (site,) = function_app().resource("site")
    assert site["tags"]["azd-service-name"] == "connector"  # how azd finds the service's host
