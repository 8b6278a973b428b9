"""App settings → frozen settings objects, read when needed (never at import).

Every setting the code names is listed in ``SETTINGS`` with its meaning; the README's settings
table and ``local.settings.sample.json`` are checked against it by a test. Secrets are kept out of
``repr`` so a logged settings object never leaks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.errors import ConfigError

# name -> (required, description). Keep in the order the README shows them.
SETTINGS: dict[str, tuple[bool, str]] = {
    "DATAVERSE_URL": (
        True,
        "Environment URL of Dynamics 365, e.g. https://contoso.crm4.dynamics.com",
    ),
    "ENTRA_TENANT_ID": (True, "Entra ID tenant of the app registration"),
    "ENTRA_CLIENT_ID": (True, "Client id of the connector's app registration"),
    "ENTRA_CLIENT_SECRET": (
        False,
        "Client secret of the app registration (Key Vault reference); or ENTRA_CLIENT_CERTIFICATE",
    ),
    "ENTRA_CLIENT_CERTIFICATE": (
        False,
        "Instead of the secret: the app registration's certificate, PEM (key and certificate) or "
        "base64 PKCS#12 as a Key Vault reference to a certificate gives it",
    ),
    "ENTRA_AUTHORITY_HOST": (
        False,
        "Entra ID authority host (default https://login.microsoftonline.com)",
    ),
    "CONNECTOR_API_AUDIENCE": (
        False,
        "Audience of the user tokens the ribbon API accepts: the connector API's App ID URI (the"
        " client id is accepted too)",
    ),
    "CONNECTOR_API_SCOPE": (
        False,
        "Delegated scope a caller's token must carry for the connector's API "
        "(default user_impersonation)",
    ),
    "DOTDIGITAL_ACCOUNT_INFO_URL": (
        False,
        "Where region discovery starts (default https://r1-api.dotdigital.com/v2/account-info)",
    ),
    "OUTBOUND_CA_BUNDLE": (
        False,
        "Extra CA bundle for outbound HTTPS (local emulators only)",
    ),
    "HTTP_TIMEOUT_SECONDS": (False, "Timeout of one outbound HTTP request (default 60)"),
    "RETRY_MAX_ATTEMPTS": (False, "Attempts per request before giving up (default 5)"),
    "RETRY_MAX_WAIT_SECONDS": (False, "Longest wait a function holds for Retry-After (default 60)"),
    "STATE_STORAGE_CONNECTION": (
        False,
        "Table Storage connection string for sync state (default: the host storage's tables)",
    ),
    "AzureWebJobsStorage": (
        False,
        "Functions host storage connection string (local loop); also the default state store",
    ),
    "AzureWebJobsStorage__accountName": (
        False,
        "Host storage by managed identity: the storage account; its tables hold the sync state",
    ),
    "AzureWebJobsStorage__tableServiceUri": (
        False,
        "Host storage by managed identity: the table endpoint, where it is not the public cloud's",
    ),
    "ServiceBusConnection": (
        False,
        "Service Bus connection string (local loop; or the identity form below)",
    ),
    "ServiceBusConnection__fullyQualifiedNamespace": (
        False,
        "Service Bus namespace, e.g. contoso.servicebus.windows.net: the trigger and the app's "
        "own sends connect with the managed identity",
    ),
    "AZURE_CLIENT_ID": (
        False,
        "Client id of a user-assigned managed identity (default: the system-assigned one)",
    ),
    "OPTIN_QUEUE_NAME": (False, "Queue of opt-in batches (default optin-batches)"),
    "ENGAGEMENT_QUEUE_NAME": (
        False, "Queue of engagement batches (default engagement-batches)",
    ),
    "ENGAGEMENT_MAX_DELIVERY_COUNT": (
        False, "The engagement queue's max delivery count, as deployed (10)",
    ),
    "ENGAGEMENT_RETENTION_DAYS": (
        False, "Days engagement events are kept in the event store for the timeline (730)",
    ),
    "SUPPRESSION_QUEUE_NAME": (
        False, "Queue of suppression batches (default suppression-batches)",
    ),
    "SYNC_TIMER_SCHEDULE": (True, "NCRONTAB schedule of the sync timer, e.g. 0 */1 * * * *"),
    "SYNC_DRY_RUN": (False, "true: every sync reports what it would change and writes nothing"),
    "SYNC_READ_OVERLAP_SECONDS": (
        False,
        "How far each read reaches back before the watermark (300)",
    ),
    "SYNC_READER_MAX_SECONDS": (
        False,
        "Time one timer run may spend reading; the rest resumes (240; 0 reads one flush a tick)",
    ),
    "OPTIN_SHARDS": (False, "Sessions opt-in batches are spread over; one address, one shard (10)"),
    "OPTIN_PAGES_PER_FLUSH": (
        False,
        "dotdigital pages (1000) buffered before batches are sent (10)",
    ),
    "OPTIN_MAX_DELIVERY_COUNT": (False, "The opt-in queue's max delivery count, as deployed (10)"),
    "SUPPRESSION_SHARDS": (
        False, "Sessions suppression batches are spread over; one address, one shard (10)",
    ),
    "ENGAGEMENT_SHARDS": (
        False, "Sessions engagement batches are spread over; one person, one shard (10)",
    ),
    "SUPPRESSION_MAX_DELIVERY_COUNT": (
        False, "The suppression queue's max delivery count, as deployed (10)",
    ),
    "RESUBSCRIBE_RESEND_HOURS": (
        False,
        "dotdigital's resend window: no second resubscribe call for an address within it (24)",
    ),
    "RETENTION_TIMER_SCHEDULE": (
        True,
        "NCRONTAB schedule of the retention timer, e.g. 0 30 3 * * * (daily, 03:30 UTC)",
    ),
    "STATE_RETENTION_DAYS": (
        False,
        "Days completed runs and run summaries are kept before they are purged (30)",
    ),
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        False,
        "Application Insights: logs, traces and metrics are sent there (nothing is sent without)",
    ),
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": (
        False,
        "Authorization=AAD: telemetry is signed with the managed identity (local auth off)",
    ),
    "LOCAL_QUEUE_DIR": (
        False,
        "Dev host only: directory of the durable local queues (the app never reads it)",
    ),
    "DEVHOST_FUNCTION_KEY": (False, "Dev host only: key for function-level HTTP routes"),
    "DEVHOST_MASTER_KEY": (False, "Dev host only: master key (admin routes, /admin/functions)"),
}

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_ACCOUNT_INFO_URL = "https://r1-api.dotdigital.com/v2/account-info"
# The scope an app registration exposes when "Expose an API" is set up with the portal's defaults.
DEFAULT_API_SCOPE = "user_impersonation"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    timeout_s: float = 60.0
    ca_bundle: str | None = None
    max_attempts: int = 5
    max_wait_s: float = 60.0

    @property
    def verify(self) -> str | bool:
        """What to pass as ``verify=`` on every request (the environment's bundle is ignored)."""
        return self.ca_bundle or True


@dataclass(frozen=True, slots=True)
class EntraSettings:
    tenant_id: str
    client_id: str
    client_secret: str | None = field(repr=False)
    authority_host: str = DEFAULT_AUTHORITY_HOST
    api_audience: str | None = None
    api_scope: str = DEFAULT_API_SCOPE
    # Exactly one of the secret and the certificate is set (``load_settings`` checks).
    client_certificate: str | None = field(default=None, repr=False)

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"


@dataclass(frozen=True, slots=True)
class DataverseSettings:
    url: str

    @property
    def api_url(self) -> str:
        return f"{self.url.rstrip('/')}/api/data/v9.2/"

    @property
    def scope(self) -> str:
        return f"{self.url.rstrip('/')}/.default"


@dataclass(frozen=True, slots=True)
class DotdigitalSettings:
    account_info_url: str = DEFAULT_ACCOUNT_INFO_URL


@dataclass(frozen=True, slots=True)
class StateSettings:
    """A connection string (local loop), or a table endpoint reached with the managed identity."""

    connection_string: str | None = field(default=None, repr=False)
    table_endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class QueueSettings:
    connection_string: str | None = field(default=None, repr=False)
    namespace: str | None = None
    optin_queue: str = "optin-batches"
    suppression_queue: str = "suppression-batches"
    engagement_queue: str = "engagement-batches"


@dataclass(frozen=True, slots=True)
class SyncSettings:
    dry_run: bool = False
    read_overlap_s: float = 300.0
    reader_max_s: float = 240.0
    optin_shards: int = 10
    # As many pages as shards: each flush gives every shard one batch of about 1,000 (a batch
    # costs a lookup and one write request whatever its size), and the reader's buffer stays small.
    optin_pages_per_flush: int = 10
    optin_max_delivery_count: int = 10
    suppression_shards: int = 10
    engagement_shards: int = 10
    suppression_max_delivery_count: int = 10
    resubscribe_resend_hours: float = 24.0
    engagement_max_delivery_count: int = 10
    engagement_retention_days: float = 730.0
    retention_days: float = 30.0


@dataclass(frozen=True, slots=True)
class Settings:
    http: HttpSettings
    entra: EntraSettings
    dataverse: DataverseSettings
    dotdigital: DotdigitalSettings
    state: StateSettings
    queues: QueueSettings
    sync: SyncSettings


def _required(environ: Mapping[str, str], name: str) -> str:
    value = (environ.get(name) or "").strip()
    if not value:
        raise ConfigError(f"missing app setting {name}: {SETTINGS[name][1]}")
    return value


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    value = (environ.get(name) or "").strip()
    return value or None


def _https_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigError(f"invalid app setting {name}: expected an https:// URL")
    return value.rstrip("/")


def _number(environ: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = _optional(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"invalid app setting {name}: expected a number") from None
    if value < minimum:
        raise ConfigError(f"invalid app setting {name}: must be at least {minimum:g}")
    return value


def load_http_settings(environ: Mapping[str, str]) -> HttpSettings:
    return HttpSettings(
        timeout_s=_number(environ, "HTTP_TIMEOUT_SECONDS", 60.0, minimum=1),
        ca_bundle=_optional(environ, "OUTBOUND_CA_BUNDLE"),
        max_attempts=int(_number(environ, "RETRY_MAX_ATTEMPTS", 5, minimum=1)),
        max_wait_s=_number(environ, "RETRY_MAX_WAIT_SECONDS", 60.0, minimum=0),
    )


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = (_optional(environ, name) or "false").lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"invalid app setting {name}: expected true or false")
    return raw in ("true", "1", "yes")


def load_sync_settings(environ: Mapping[str, str]) -> SyncSettings:
    return SyncSettings(
        dry_run=_flag(environ, "SYNC_DRY_RUN"),
        read_overlap_s=_number(environ, "SYNC_READ_OVERLAP_SECONDS", 300.0, minimum=0),
        # 0 reads one flush per tick (tests use it to spread a run over many ticks).
        reader_max_s=_number(environ, "SYNC_READER_MAX_SECONDS", 240.0, minimum=0),
        optin_shards=int(_number(environ, "OPTIN_SHARDS", 10, minimum=1)),
        optin_pages_per_flush=int(_number(environ, "OPTIN_PAGES_PER_FLUSH", 10, minimum=1)),
        optin_max_delivery_count=int(_number(environ, "OPTIN_MAX_DELIVERY_COUNT", 10, minimum=1)),
        suppression_shards=int(_number(environ, "SUPPRESSION_SHARDS", 10, minimum=1)),
        engagement_shards=int(_number(environ, "ENGAGEMENT_SHARDS", 10, minimum=1)),
        suppression_max_delivery_count=int(
            _number(environ, "SUPPRESSION_MAX_DELIVERY_COUNT", 10, minimum=1)
        ),
        resubscribe_resend_hours=_number(environ, "RESUBSCRIBE_RESEND_HOURS", 24.0, minimum=0),
        engagement_max_delivery_count=int(
            _number(environ, "ENGAGEMENT_MAX_DELIVERY_COUNT", 10, minimum=1)
        ),
        engagement_retention_days=_number(environ, "ENGAGEMENT_RETENTION_DAYS", 730.0,
                                          minimum=1),
        retention_days=_number(environ, "STATE_RETENTION_DAYS", 30.0, minimum=1),
    )


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read every setting the app needs; raises ``ConfigError`` naming the first bad one."""
    entra = EntraSettings(
        tenant_id=_required(environ, "ENTRA_TENANT_ID"),
        client_id=_required(environ, "ENTRA_CLIENT_ID"),
        client_secret=_optional(environ, "ENTRA_CLIENT_SECRET"),
        client_certificate=_optional(environ, "ENTRA_CLIENT_CERTIFICATE"),
        authority_host=_https_url(
            "ENTRA_AUTHORITY_HOST",
            _optional(environ, "ENTRA_AUTHORITY_HOST") or DEFAULT_AUTHORITY_HOST,
        ),
        api_audience=_optional(environ, "CONNECTOR_API_AUDIENCE"),
        api_scope=_optional(environ, "CONNECTOR_API_SCOPE") or DEFAULT_API_SCOPE,
    )
    if (entra.client_secret is None) == (entra.client_certificate is None):
        raise ConfigError("set exactly one of ENTRA_CLIENT_SECRET and ENTRA_CLIENT_CERTIFICATE "
                          "(the app registration's credential)")
    queue_connection = _optional(environ, "ServiceBusConnection")
    queue_namespace = _optional(environ, "ServiceBusConnection__fullyQualifiedNamespace")
    return Settings(
        http=load_http_settings(environ),
        entra=entra,
        dataverse=DataverseSettings(
            url=_https_url("DATAVERSE_URL", _required(environ, "DATAVERSE_URL"))
        ),
        dotdigital=DotdigitalSettings(
            account_info_url=_https_url(
                "DOTDIGITAL_ACCOUNT_INFO_URL",
                _optional(environ, "DOTDIGITAL_ACCOUNT_INFO_URL") or DEFAULT_ACCOUNT_INFO_URL,
            )
        ),
        state=load_state_settings(environ),
        queues=QueueSettings(
            connection_string=queue_connection,
            namespace=queue_namespace,
            optin_queue=_optional(environ, "OPTIN_QUEUE_NAME") or "optin-batches",
            suppression_queue=(
                _optional(environ, "SUPPRESSION_QUEUE_NAME") or "suppression-batches"
            ),
            engagement_queue=(
                _optional(environ, "ENGAGEMENT_QUEUE_NAME") or "engagement-batches"
            ),
        ),
        sync=load_sync_settings(environ),
    )


def load_state_settings(environ: Mapping[str, str]) -> StateSettings:
    """Where the sync state lives: its own connection string, else the host storage's tables,
    by connection string (local loop) or by managed identity (deployed)."""
    connection = _optional(environ, "STATE_STORAGE_CONNECTION") or _optional(
        environ, "AzureWebJobsStorage"
    )
    if connection is not None:
        return StateSettings(connection_string=connection)
    endpoint = _optional(environ, "AzureWebJobsStorage__tableServiceUri")
    if endpoint is not None:
        return StateSettings(
            table_endpoint=_https_url("AzureWebJobsStorage__tableServiceUri", endpoint)
        )
    account = _optional(environ, "AzureWebJobsStorage__accountName")
    if account is not None:
        if not account.isalnum() or not account.islower():
            raise ConfigError("AzureWebJobsStorage__accountName must be a storage account name "
                              f"(lower-case letters and digits), not {account!r}")
        return StateSettings(table_endpoint=f"https://{account}.table.core.windows.net")
    raise ConfigError("missing app setting AzureWebJobsStorage (a connection string), or "
                      "AzureWebJobsStorage__accountName for the managed identity")


def resolve_secret(environ: Mapping[str, str], secret_name: str) -> str:
    """The value of the app setting an email account's ``ec_secretname`` names."""
    name = secret_name.strip()
    if not name:
        raise ConfigError("an email account has an empty ec_secretname")
    value = (environ.get(name) or "").strip()
    if not value:
        raise ConfigError(f"missing app setting {name} (named by an email account's ec_secretname)")
    return value
