"""Errors of the Entra ID emulator: OAuth error responses and the in-process ``InvalidToken``.

Entra answers a failed token request with a JSON envelope (``error``, ``error_description`` starting
with an ``AADSTS`` code and ending with trace/correlation ids and a timestamp, ``error_codes``,
``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri``). ``invalid_client`` comes with 401,
the other OAuth errors with 400.
"""

from __future__ import annotations

import datetime as dt
import uuid

from emulators.http import Response

ERROR_PAGE = "https://login.microsoftonline.com/error?code="


class InvalidToken(Exception):
    """A bearer token the emulated tenant did not issue, or not for this audience or time."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EntraError(Exception):
    """A token-endpoint failure, raised where it is detected and rendered once by the emulator."""

    def __init__(self, error: str, code: int, message: str, status: int | None = None) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status if status is not None else (401 if error == "invalid_client" else 400)


def entra_error_response(
    failure: EntraError, now: dt.datetime, correlation_id: str | None = None
) -> Response:
    trace_id = str(uuid.uuid4())
    # Entra echoes the client's ``client-request-id`` (msal sends one) as the correlation id.
    correlation = correlation_id or str(uuid.uuid4())
    timestamp = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    description = (
        f"AADSTS{failure.code}: {failure.message}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation}\r\nTimestamp: {timestamp}"
    )
    return Response.json(
        failure.status,
        {
            "error": failure.error,
            "error_description": description,
            "error_codes": [failure.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": f"{ERROR_PAGE}{failure.code}",
        },
    )


def missing_parameter(name: str) -> EntraError:
    return EntraError(
        "invalid_request", 900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def tenant_not_found(tenant: str) -> EntraError:
    return EntraError(
        "invalid_request", 90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant.",
    )


def unknown_client(client_id: str, tenant_name: str) -> EntraError:
    return EntraError(
        "unauthorized_client", 700016,
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{tenant_name}'. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant. You may have sent "
        "your authentication request to the wrong tenant.",
    )


def invalid_client_secret(client_id: str) -> EntraError:
    return EntraError(
        "invalid_client", 7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client "
        "secret value, not the client secret ID, for a secret added to app "
        f"'{client_id}'.",
    )


def missing_client_credential() -> EntraError:
    return EntraError(
        "invalid_client", 7000218,
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    )


def unsupported_grant_type(grant_type: str) -> EntraError:
    return EntraError(
        "unsupported_grant_type", 70003,
        f"The app requested an unsupported grant type '{grant_type}'.",
    )


def invalid_scope(scope: str) -> EntraError:
    return EntraError(
        "invalid_scope", 70011,
        "The provided value for the input parameter 'scope' is not valid. "
        f"The scope {scope} is not valid.",
    )


def client_credentials_need_default(scope: str) -> EntraError:
    return EntraError(
        "invalid_scope", 1002012,
        f"The provided value for scope {scope} is not valid. Client credential flows must have a "
        "scope value with /.default suffixed to the resource identifier (application ID URI).",
    )


def several_resources(scope: str) -> EntraError:
    return EntraError(
        "invalid_scope", 28000,
        "Provided value for the input parameter scope is not valid because it contains more than "
        f"one resource. Scope {scope} is not valid.",
    )


def unknown_resource(resource: str, tenant_name: str) -> EntraError:
    return EntraError(
        "invalid_resource", 500011,
        f"The resource principal named {resource} was not found in the tenant named {tenant_name}. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You might have sent your authentication "
        "request to the wrong tenant.",
    )


def unknown_scope_on_resource(client_id: str, scope_name: str, resource: str) -> EntraError:
    return EntraError(
        "invalid_scope", 650053,
        f"The application '{client_id}' asked for scope '{scope_name}' that doesn't exist on the "
        f"resource '{resource}'. Contact the app vendor.",
    )


def post_only(method: str) -> EntraError:
    return EntraError(
        "invalid_request", 900561,
        f"The endpoint only accepts POST, OPTIONS requests. Received a {method} request.",
    )


def application_on_behalf_of(client_id: str) -> EntraError:
    """An on-behalf-of request whose assertion is an app-only token: OBO needs a user."""
    return EntraError(
        "unauthorized_client", 7000114,
        f"Application '{client_id}' is not allowed to make application on-behalf-of calls.",
    )


def invalid_grant(code: int, message: str) -> EntraError:
    return EntraError("invalid_grant", code, message)


# --- client assertions (private_key_jwt) -------------------------------------------------------
CERTIFICATE_DOCS = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"


def several_client_credentials() -> EntraError:
    """A client secret (in the body or HTTP Basic) and a client assertion in one request.

    RFC 6749 §2.3 forbids more than one client authentication method per request; Entra's exact
    answer is not documented, so this is its generic malformed-request error.
    """
    return EntraError(
        "invalid_request", 9002313, "Invalid request. Request is malformed or invalid."
    )


def unexpected_client_assertion_type() -> EntraError:
    return EntraError("invalid_request", 90011, "Unexpected client assertion type.")


def malformed_client_assertion() -> EntraError:
    return EntraError("invalid_client", 50027, "JWT token is invalid or malformed.")


def _key_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")


def client_assertion_key_not_found(client_id: str, thumbprint: str) -> EntraError:
    return EntraError(
        "invalid_client", 700027,
        "The certificate with identifier used to sign the client assertion is not registered on "
        f"application. [Reason - The key was not found., Thumbprint of key used by client: "
        f"'{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph "
        f"to see configured keys for app Id '{client_id}'.]",
    )


def client_assertion_bad_signature(
    thumbprint: str, start: dt.datetime, end: dt.datetime
) -> EntraError:
    return _signature_validation_failed(
        "The provided signature value did not match the expected signature value.",
        thumbprint, start, end,
    )


def client_assertion_key_expired(
    thumbprint: str, start: dt.datetime, end: dt.datetime
) -> EntraError:
    return _signature_validation_failed("The key used is expired.", thumbprint, start, end)


def _signature_validation_failed(
    reason: str, thumbprint: str, start: dt.datetime, end: dt.datetime
) -> EntraError:
    # Entra reports a found key that cannot verify the assertion, for whichever reason, as a
    # failed signature validation naming the key's thumbprint and validity.
    return EntraError(
        "invalid_client", 700027,
        f"Client assertion failed signature validation. [Reason - {reason}, Thumbprint of key "
        f"used by client: '{thumbprint}', Found key 'Start={_key_time(start)}, "
        f"End={_key_time(end)}']",
    )


def client_assertion_wrong_application() -> EntraError:
    return EntraError(
        "invalid_client", 700021,
        "Client assertion application identifier doesn't match 'client_id' parameter. Review the "
        f"documentation at {CERTIFICATE_DOCS} .",
    )


def client_assertion_wrong_audience() -> EntraError:
    return EntraError(
        "invalid_client", 700023,
        "Client assertion audience claim does not match Realm issuer. Review the documentation at "
        f"{CERTIFICATE_DOCS} .",
    )


def client_assertion_outside_time_range(
    now: float, not_before: float | None, expires: float
) -> EntraError:
    return EntraError(
        "invalid_client", 700024,
        f"Client assertion is not within its valid time range. Current time: {_iso(now)}, "
        f"assertion valid from {_iso(not_before or 0)}, expiry time of assertion {_iso(expires)}. "
        f"Review the documentation at {CERTIFICATE_DOCS} .",
    )


def _iso(epoch: float) -> str:
    # Entra prints .NET's round-trip format: seven fractional digits.
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
