"""What every HTTP function a CRM page calls shares: the user's token checked first, JSON
answers, and failures turned into their status without internals (400 a rule broken, 401 no valid
user token, 503/502 a service behind busy or failing, 500 anything else)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import azure.functions as func

from shared import bootstrap
from shared.domain.enrolment import RequestRefused
from shared.errors import IntegrationError, TransientError, Unauthorized

logger = logging.getLogger(__name__)


def json_response(
    status: int, payload: object, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status, headers=headers,
                             mimetype="application/json", charset="utf-8")


def error_response(status: int, message: str) -> func.HttpResponse:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return json_response(status, {"error": message}, headers)


def authenticated(handler: Callable[[func.HttpRequest, str], func.HttpResponse]
            ) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Authenticate, run, and turn every failure into its status without internals."""

    def run(req: func.HttpRequest) -> func.HttpResponse:
        try:
            user = bootstrap.services().user_tokens.validate(req.headers.get("Authorization"))
            return handler(req, user.assertion)
        except Unauthorized as refused:
            logger.info("CRM page API: token refused: %s", refused.reason)
            return error_response(401, "a valid Entra user token for the connector API is required")
        except RequestRefused as refused:
            return error_response(400, str(refused))
        except TransientError:
            logger.exception("CRM page API: a service behind is unavailable")
            return error_response(
                503, "a service the connector depends on is busy; try again shortly")
        except IntegrationError:
            logger.exception("CRM page API: a service behind failed")
            return error_response(502, "a service the connector depends on failed")
        except Exception:
            logger.exception("CRM page API: unexpected failure")
            return error_response(500, "the connector failed; the error is in its logs")

    return run
