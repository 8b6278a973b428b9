"""The Engagement sync through the dev host, the dotdigital emulator and Azurite: campaign
sends, opens, clicks, page views and form responses end in the event store once each, and the
same with faults on both services."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from devtools.local_stack import LocalStack
from devtools.run_report import build_report
from shared.adapters.storage.event_store import TableEventStore
from shared.domain.email import match_key
from shared.domain.engagement import person_key
from shared.domain.model import SyncStatus, SyncType
from tests.e2e.conftest import stack_for
from tests.e2e.log_secrets import account_secrets, assert_no_secret_logged
from tests.e2e.org import Org
from tests.e2e.test_faults import FAULTS

SENT = "2026-11-01T09:00:00Z"


def _org() -> Org:
    org = Org(email_accounts=1)
    account = org.dotdigital[0]
    account["contacts"] += [{"email": e, "optInType": "Single"}
                            for e in ("ann@example.com", "bob@example.com")]
    account["campaigns"] = [{
        "id": 10, "name": "Spring sale", "status": "Sent", "dateSent": SENT,
        "activities": [
            {"email": "ann@example.com",
             "opens": [{"date": "2026-11-01T10:00:00Z"}],
             "clicks": [{"date": "2026-11-01T10:05:00Z", "url": "https://shop.example/a"}],
             "pageViews": [{"date": "2026-11-01T10:06:00Z", "url": "https://shop.example/b"}]},
            {"email": "bob@example.com"},
        ]}]
    account["surveys"] = [{
        "id": 7, "name": "Feedback", "pages": [{"id": 1, "fields": [
            {"id": 15, "type": "text", "text": "How was it?", "isRequired": False}]}],
        "responses": [{"email": "ann@example.com", "dateStarted": "2026-11-02T08:00:00Z",
                       "dateCompleted": "2026-11-02T08:01:00Z",
                       "givenAnswers": [{"fieldId": 15, "value": "Great"}]}]}]
    org.tables["ec_syncschedules"].append({
        "ec_syncscheduleid": str(uuid.uuid4()), "ec_name": "Brand 1: Engagement",
        "_ec_emailaccountid_value": org.ids[0], "ec_synctype": int(SyncType.ENGAGEMENT),
        "ec_intervalminutes": 0, "ec_windowstart": None, "ec_windowend": None,
        "ec_status": int(SyncStatus.NONE), "ec_syncnow": False,
    })
    return org


def timelines(stack: LocalStack) -> dict[str, Any]:
    store = TableEventStore(TableServiceClient.from_connection_string(
        stack.azurite.connection_string))
    found: dict[str, Any] = {}
    for email in ("ann@example.com", "bob@example.com"):
        key = match_key(email)
        assert isinstance(key, str)
        page = store.timeline(person_key(key), limit=200)
        found[email] = (page.summary, sorted((str(e.kind), e.at.isoformat(), e.title,
                                              tuple(sorted((k, str(v)) for k, v in
                                                           e.details.items())))
                                             for e in page.events))
    return found


def sync(stack: LocalStack) -> None:
    stack.request_sync_now(sync_type=SyncType.ENGAGEMENT)
    completion = stack.run_until_complete(timeout_s=90)
    assert not completion.timer_failures, completion.timer_failures


def test_every_kind_is_stored_once_with_its_details_and_a_second_run_adds_nothing() -> None:
    with stack_for(_org().dataset()) as stack:
        sync(stack)
        first = timelines(stack)
        ann_summary, ann_events = first["ann@example.com"]
        assert (ann_summary.sends, ann_summary.opens, ann_summary.clicks,
                ann_summary.page_views, ann_summary.form_responses) == (1, 1, 1, 1, 1)
        kinds = [event[0] for event in ann_events]
        assert sorted(kinds) == ["click", "form_response", "open", "page_view", "send"]
        click = next(e for e in ann_events if e[0] == "click")
        assert ("url", "https://shop.example/a") in click[3]
        form = next(e for e in ann_events if e[0] == "form_response")
        assert "How was it?" in str(form[3]) and "Great" in str(form[3])
        bob_summary, bob_events = first["bob@example.com"]
        assert (bob_summary.sends, len(bob_events)) == (1, 1)
        report = build_report(stack)
        assert report["engagement_total"]["written"] == 6 and report["ok"], report
        sync(stack)  # reads the overlap again: stores nothing twice
        assert timelines(stack) == first


def test_with_faults_on_both_services_the_store_ends_as_without_them() -> None:
    dataset = _org().dataset()
    with stack_for(dataset) as clean:
        sync(clean)
        expected = timelines(clean)
    with stack_for(dataset, SYNC_READER_MAX_SECONDS="5") as faulty:
        for admin in (faulty.dataverse, faulty.dotdigital):
            admin.set_faults(FAULTS, seed=3)
        sync(faulty)
        assert timelines(faulty) == expected
        assert expected["ann@example.com"][0].clicks == 1  # something was stored
        report = build_report(faulty)
        assert report["dead_lettered"] == 0 and report["engagement_total"]["failed"] == 0


def test_no_address_token_or_password_appears_in_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    org = _org()
    with stack_for(org.dataset()) as stack:
        sync(stack)
        stored = timelines(stack)
        secrets = ["ann@example.com", "bob@example.com", *account_secrets(stack.dataset),
                   stack.values["ENTRA_CLIENT_SECRET"]]
    assert stored["ann@example.com"][1]  # the run really handled the addresses
    assert_no_secret_logged(caplog, secrets, at_least=10)
