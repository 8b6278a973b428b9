"""Contacts and leads read as the signed-in CRM user (the records a ribbon page names).

Dataverse is called with a token obtained on the user's behalf, so the user's security roles
apply: a record the user may not read is answered 403 and reported, never read with the app's
wider rights. One ``$batch`` reads a chunk of records by id (a GET part each), never a request
per record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from http.cookiejar import DefaultCookiePolicy

import requests

from shared.adapters.dataverse.bulk import MAX_BATCH_OPERATIONS
from shared.adapters.dataverse.client import DataverseClient
from shared.config import DataverseSettings, HttpSettings
from shared.domain.enrolment import NOT_ALLOWED, NOT_FOUND, RecordAddress, RecordPerson

ENTITY_SETS = {"contact": "contacts", "lead": "leads"}
EMAIL_COLUMN = "emailaddress1"
NAME_COLUMN = "fullname"  # computed by Dataverse for contacts and leads
CHUNK = MAX_BATCH_OPERATIONS // 5  # 200: a grid page of selected records in one request


class DataverseRecordsAsUser:
    def __init__(
        self, settings: DataverseSettings, http: HttpSettings,
        user_token: Callable[[str, str], str],
    ) -> None:
        self._settings = settings
        self._http = http
        self._user_token = user_token  # (assertion, scope) -> a Dataverse token for that user
        # One connection pool for every user's calls: a client per call would open a new TLS
        # connection to Dataverse for each page view. Cookies are refused so that nothing one
        # user's answer sets (affinity, session) ever travels with another user's request.
        self._session = requests.Session()
        self._session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    def _client(self, assertion: str) -> DataverseClient:
        return DataverseClient(self._settings, self._http,
                               lambda: self._user_token(assertion, self._settings.scope),
                               session=self._session)

    def addresses(
        self, assertion: str, entity: str, ids: Sequence[str]
    ) -> list[RecordAddress]:
        """Each record's address, read as the user whose token ``assertion`` is."""
        entity_set = ENTITY_SETS[entity]
        client = self._client(assertion)
        found: list[RecordAddress] = []
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            answers = client.rows_by_id(entity_set, chunk, select=(EMAIL_COLUMN,))
            for record_id, (status, row) in zip(chunk, answers, strict=True):
                if row is not None:
                    email = row.get(EMAIL_COLUMN)
                    found.append(RecordAddress(record_id, email if isinstance(email, str)
                                               else None))
                else:
                    found.append(RecordAddress(
                        record_id, refusal=NOT_ALLOWED if status == 403 else NOT_FOUND))
        return found

    def person(self, assertion: str, entity: str, record_id: str) -> RecordPerson:
        """One record's name and address, read as the user (one ``$batch`` of one part, so a
        hidden record is told from a missing one exactly as ``addresses`` tells them)."""
        client = self._client(assertion)
        [(status, row)] = client.rows_by_id(ENTITY_SETS[entity], [record_id],
                                            select=(NAME_COLUMN, EMAIL_COLUMN))
        if row is None:
            return RecordPerson(record_id, refusal=NOT_ALLOWED if status == 403 else NOT_FOUND)
        name, email = row.get(NAME_COLUMN), row.get(EMAIL_COLUMN)
        return RecordPerson(record_id, name if isinstance(name, str) else "",
                            email if isinstance(email, str) and email.strip() else None)
