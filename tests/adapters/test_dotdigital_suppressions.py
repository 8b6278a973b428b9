"""DotdigitalEmailPlatform's suppression read, suppress and resubscribe against the dotdigital
emulator: every reason, seek paging that survives resubscriptions mid-read, resumable markers,
resubscribers inside the window, typed refusals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from shared.adapters.dotdigital import suppressions
from shared.adapters.dotdigital.platform import DotdigitalEmailPlatform
from shared.adapters.http.policy import RetryPolicy
from shared.config import DotdigitalSettings, HttpSettings
from shared.domain.commands import SuppressionEvent
from shared.domain.model import EmailAccount
from shared.errors import BadRequest
from shared.services.ports import EventPage
from tests.adapters.conftest import admin

API_USER = "apiuser-suppressions@apiconnector.com"
PASSWORD = "Passw0rd!local"
ACCOUNT_ID = 2002
ACCOUNT = EmailAccount(row_id="acc-s", name="Suppression test", dotdigital_account_id="2002",
                       api_user=API_USER, secret_name="DD_SECRET_TEST")
SINCE = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
UNTIL = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
REASONS = ("Unsubscribed", "SoftBounced", "HardBounced", "IspComplained", "MailBlocked",
           "DirectComplaint", "Suppressed", "NotAllowed", "DomainSuppression", "NoMxRecord")


def at(day: int, hour: int = 0, second: int = 0, ms: int = 0, month: int = 6) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, 0, second, ms * 1000, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def suppressed(email: str, reason: str, removed: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {"email": email, "created": "2025-01-01T00:00:00Z", "modified": iso(removed),
            "suppression": {"reason": reason, "dateRemoved": iso(removed)}, **extra}


def subscribed(email: str, modified: dt.datetime, last: dt.datetime | None,
               status: str = "Subscribed") -> dict[str, Any]:
    fields = {"LASTSUBSCRIBED": iso(last)} if last is not None else {}
    return {"email": email, "status": status, "created": "2025-01-01T00:00:00Z",
            "modified": iso(modified), "dataFields": fields}


def seed(cluster: EmulatorCluster, contacts: list[dict[str, Any]]) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [{
        "id": ACCOUNT_ID, "apiUser": API_USER, "password": PASSWORD, "region": "r3",
        "name": "Suppression test", "contacts": contacts,
    }]})


def contact_state(cluster: EmulatorCluster, email: str) -> dict[str, Any]:
    state = admin(cluster, "dotdigital", "GET", f"state?accountId={ACCOUNT_ID}&email={email}")
    found: dict[str, Any] = state["accounts"][0]["contacts"][0]
    return found


def challenge_emails(cluster: EmulatorCluster, email: str) -> list[dict[str, Any]]:
    state = admin(cluster, "dotdigital", "GET", f"state?accountId={ACCOUNT_ID}&email={email}")
    return list(state["accounts"][0]["challengeEmails"])


@pytest.fixture
def platform(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> DotdigitalEmailPlatform:
    info_url = cluster.describe()["dotdigital"]["account_info_url"]
    return DotdigitalEmailPlatform(DotdigitalSettings(info_url), http,
                                   {"DD_SECRET_TEST": PASSWORD}, policy=fast_policy)


def read(platform: DotdigitalEmailPlatform, since: dt.datetime = SINCE,
         until: dt.datetime = UNTIL, **kwargs: Any) -> list[EventPage]:
    return list(platform.suppression_events(ACCOUNT, since, until, **kwargs))


def events(pages: list[EventPage]) -> list[SuppressionEvent]:
    return [event for page in pages for event in page.events]


def resubscribe_at_once(cluster: EmulatorCluster, platform: DotdigitalEmailPlatform,
                        email: str) -> dt.datetime:
    """A contact resubscribed without a challenge, as a form would; its new LASTSUBSCRIBED."""
    url = platform.describe_account(ACCOUNT).api_endpoint + \
        "v2/contacts/resubscribe-with-no-challenge"
    for _ in range(20):  # through the faults a faulty run injects
        try:
            response = requests.post(url, json={"unsubscribedContact": {"email": email}},
                                     auth=(API_USER, PASSWORD), verify=cluster.ca_bundle,
                                     timeout=30)
        except requests.ConnectionError:
            continue
        if response.status_code == 200:
            assert response.json()["status"] == "ContactAdded"
            last = contact_state(cluster, email)["dataFields"]["LASTSUBSCRIBED"]
            return dt.datetime.fromisoformat(last)
        assert response.status_code == 429, response.text
    raise AssertionError("the contact could not be resubscribed through the faults")


# --- reading --------------------------------------------------------------------------------------
def test_every_reason_is_read_with_its_date(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    expected = [SuppressionEvent(f"r{n}@example.com", at(2 + n, 9, 30, 250), reason)
                for n, reason in enumerate(REASONS)]
    seed(cluster, [
        *[suppressed(e.email, e.reason, e.at) for e in reversed(expected)],
        suppressed("before@example.com", "HardBounced", SINCE - dt.timedelta(milliseconds=1)),
        subscribed("active@example.com", at(3), at(1, month=1)),
    ])

    pages = read(platform)

    assert events(pages) == expected
    assert all(e.at.tzinfo is dt.UTC for e in events(pages))
    assert pages[-1].next_marker is None


def test_paging_with_a_small_page_size_reads_every_entry_once_in_order(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    # Runs of entries sharing one second make pages start inside a second, and end in another.
    moments = [at(2, 8, 0, ms) for ms in range(0, 900, 100)] + \
        [at(2, 8, 1, 5), at(3)] + [at(4, 10, 59, ms) for ms in range(10, 130, 10)]
    expected = [SuppressionEvent(f"s{n:02d}@example.com", moment, REASONS[n % len(REASONS)])
                for n, moment in enumerate(moments)]
    resubscribers = [SuppressionEvent(f"back{n}@example.com", at(10 + n), "") for n in range(5)]
    seed(cluster, [
        *[suppressed(e.email, e.reason, e.at) for e in expected],
        *[subscribed(e.email, e.at, e.at) for e in resubscribers],
    ])

    pages = read(platform, page_size=4)

    assert events(pages) == expected + resubscribers
    assert len(pages) >= 10
    assert [page.next_marker is None for page in pages] == [False] * (len(pages) - 1) + [True]
    assert all(len(page.events) <= 4 for page in pages)


def test_resuming_from_any_saved_marker_gives_exactly_the_rest(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    moments = [at(2, 8, 0, ms) for ms in range(0, 700, 100)] + [at(5 + n) for n in range(4)]
    seed(cluster, [
        *[suppressed(f"s{n}@example.com", "Unsubscribed", m) for n, m in enumerate(moments)],
        *[subscribed(f"back{n}@example.com", at(20 + n), at(20 + n)) for n in range(5)],
    ])
    pages = read(platform, page_size=3)
    assert len(events(pages)) == len(moments) + 5

    for number, page in enumerate(pages[:-1]):
        assert page.next_marker is not None
        rest = read(platform, marker=page.next_marker, page_size=3)
        assert events(rest) == events(pages[number + 1:]), f"resumed after page {number}"
        assert rest[-1].next_marker is None


@pytest.mark.parametrize("same_second", [False, True], ids=["earlier-second", "same-second"])
def test_an_address_resubscribed_between_pages_hides_no_other_entry(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform, same_second: bool
) -> None:
    if same_second:  # every entry in one second: the next request restarts inside it
        moments = [at(2, 8, 0, 100 * n) for n in range(7)]
    else:
        moments = [at(2 + n) for n in range(7)]
    emails = [f"s{n}@example.com" for n in range(7)]
    seed(cluster, [suppressed(e, "Unsubscribed", m) for e, m in zip(emails, moments, strict=True)])
    client = platform.client_for(ACCOUNT)

    pages = platform.suppression_events(ACCOUNT, SINCE, dt.datetime.now(dt.UTC)
                                        + dt.timedelta(hours=1), page_size=3)
    first = next(pages)
    assert [e.email for e in first.events] == emails[:3]
    resubscribed_on = resubscribe_at_once(cluster, platform, emails[0])
    # Offset paging (the next 3 after the first 3) would now miss s3: it moved to position 2.
    by_offset = client.suppressed_since(SINCE, select=3, skip=3)
    assert [item["suppressedContact"]["email"] for item in by_offset] == emails[4:]
    rest = list(pages)

    read_back = [first, *rest]
    assert [e.email for e in events(read_back) if e.suppressed] == emails
    assert [e for e in events(read_back) if not e.suppressed] == [
        SuppressionEvent(emails[0], resubscribed_on, "")]


def test_resubscribers_inside_the_window_are_events_and_the_others_are_not(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    seed(cluster, [
        subscribed("at-since@example.com", SINCE, SINCE),
        subscribed("inside@example.com", at(10), at(10, 12, 5, 123)),
        subscribed("old-subscription@example.com", at(15), at(1, month=1)),
        subscribed("no-subscription-date@example.com", at(16), None),
        subscribed("pending@example.com", at(17), at(17), status="PendingOptIn"),
        suppressed("unsubscribed@example.com", "Unsubscribed", at(20),
                   dataFields={"LASTSUBSCRIBED": iso(at(19))}),
        subscribed("at-until@example.com", UNTIL, UNTIL),
        subscribed("after-until@example.com", UNTIL + dt.timedelta(milliseconds=1),
                   UNTIL + dt.timedelta(milliseconds=1)),
    ])

    pages = read(platform, page_size=2)

    assert events(pages) == [
        SuppressionEvent("unsubscribed@example.com", at(20), "Unsubscribed"),
        SuppressionEvent("at-since@example.com", SINCE, ""),
        SuppressionEvent("inside@example.com", at(10, 12, 5, 123), ""),
        SuppressionEvent("at-until@example.com", UNTIL, ""),
    ]


def test_a_resubscription_after_until_is_left_to_the_next_run(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    seed(cluster, [suppressed("later@example.com", "Unsubscribed", at(2))])
    until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    resubscribed_on = resubscribe_at_once(cluster, platform, "later@example.com")

    assert events(read(platform, until=until)) == []
    assert events(read(platform, since=until, until=resubscribed_on)) == [
        SuppressionEvent("later@example.com", resubscribed_on, "")]


@pytest.mark.parametrize("marker", [
    "", "sup", "res", "nonsense|x", "sup|2026-06-01T00:00:00Z|0", "sup|2026-13-01T00:00:00Z|0|",
    "sup|2026-06-01T00:00:00Z|-1|", "sup|2026-06-01T00:00:00Z|1|a,b",
    "sup|2026-06-01T00:00:00.5Z|1|", "sup|2026-06-01T00:00:00Z|1|1,,2",
    "sup|2026-06-01T00:00:00Z|1|2|3",
])
def test_a_malformed_marker_is_a_value_error_before_any_request(
    platform: DotdigitalEmailPlatform, marker: str
) -> None:
    with pytest.raises(ValueError):
        platform.suppression_events(ACCOUNT, SINCE, UNTIL, marker=marker)
    assert platform.stats.requests == 0


def test_bad_arguments_are_value_errors_before_any_request(
    platform: DotdigitalEmailPlatform
) -> None:
    for since, until, page_size in [
        (dt.datetime(2026, 6, 1), UNTIL, 10), (SINCE, dt.datetime(2026, 7, 1), 10),
        (UNTIL, SINCE, 10), (SINCE, UNTIL, 0), (SINCE, UNTIL, 1001),
    ]:
        with pytest.raises(ValueError):
            platform.suppression_events(ACCOUNT, since, until, page_size=page_size)
    assert platform.stats.requests == 0


def test_odd_entries_become_events_with_a_blank_address_and_never_stop_a_read() -> None:
    good = {"suppressedContact": {"id": 7, "email": "a@example.com"},
            "dateRemoved": "2026-06-02T10:00:00.5Z", "reason": "HardBounced"}
    assert suppressions.read_suppression(good, SINCE)[0] == SuppressionEvent(
        "a@example.com", dt.datetime(2026, 6, 2, 10, 0, 0, 500_000, tzinfo=dt.UTC),
        "HardBounced")
    odd: list[Any] = [
        None, [], {"dateRemoved": good["dateRemoved"], "reason": "HardBounced"},
        {**good, "suppressedContact": {"id": 7, "email": "  "}},
        {**good, "dateRemoved": None}, {**good, "dateRemoved": "yesterday"},
        {**good, "reason": None}, {**good, "reason": ""},
    ]
    for item in odd:
        event, _ = suppressions.read_suppression(item, SINCE)
        assert event.email == "" and event.at.tzinfo is not None, item
    zone_less = {**good, "dateRemoved": "2026-06-02T10:00:00"}
    assert suppressions.read_suppression(zone_less, SINCE)[0].at == at(2, 10)

    contact = {"identifiers": {"email": "b@example.com"},
               "dataFields": {"lastSubscribed": "2026-06-03T00:00:00Z"},
               "channelProperties": {"email": {"status": "Subscribed"}}}
    assert suppressions.read_resubscription(contact, SINCE, UNTIL) == SuppressionEvent(
        "b@example.com", at(3), "")
    for broken in [{**contact, "channelProperties": None}, {**contact, "dataFields": None},
                   {**contact, "dataFields": {"LASTSUBSCRIBED": 12}}, "x"]:
        assert suppressions.read_resubscription(broken, SINCE, UNTIL) is None


# --- suppress ------------------------------------------------------------------------------------
def test_suppress_suppresses_known_addresses_and_returns_the_keys_of_unknown_ones(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    seed(cluster, [subscribed(f"c{n}@example.com", at(2), at(1)) for n in range(3)])
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)

    not_found = platform.suppress(ACCOUNT, ["C0@Example.com", " c1@example.com ",
                                            "ghost@example.com", "Ghost@Example.COM",
                                            "not an address"])

    assert not_found == {"ghost@example.com"}
    assert [contact_state(cluster, f"c{n}@example.com")["status"] for n in range(3)] == [
        "Suppressed", "Suppressed", "Subscribed"]
    first = [(e.email, e.reason) for e in events(read(platform, since=started,
                                                      until=dt.datetime.now(dt.UTC)))]
    assert first == [("c0@example.com", "Suppressed"), ("c1@example.com", "Suppressed")]
    # Suppressing again is harmless: same answer, the first date is kept.
    removed = contact_state(cluster, "c0@example.com")["suppression"]["dateRemoved"]
    assert platform.suppress(ACCOUNT, ["c0@example.com", "ghost@example.com"]) == {
        "ghost@example.com"}
    assert contact_state(cluster, "c0@example.com")["suppression"]["dateRemoved"] == removed


@pytest.mark.exact_requests
def test_suppress_sends_chunks_and_nothing_for_no_addresses(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    seed(cluster, [subscribed(f"c{n}@example.com", at(2), at(1)) for n in range(600)])
    platform.describe_account(ACCOUNT)  # the region, once per process
    before = platform.stats.requests
    assert platform.suppress(ACCOUNT, []) == set()
    assert platform.stats.requests == before

    known = [f"c{n}@example.com" for n in range(600)]
    unknown = [f"u{n}@example.com" for n in range(401)]
    assert platform.suppress(ACCOUNT, known + unknown) == set(unknown)
    assert platform.stats.requests == before + 3  # chunks of 500, 500 and 1
    assert contact_state(cluster, "c599@example.com")["status"] == "Suppressed"


# --- resubscribe ---------------------------------------------------------------------------------
def test_resubscribe_challenges_an_unsubscribed_contact_once_per_resend_window(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    seed(cluster, [suppressed("left@example.com", "Unsubscribed", at(2))])

    for _ in range(2):
        status = platform.resubscribe(ACCOUNT, "left@example.com", preferred_locale="de-DE",
                                      return_url="https://example.com/back")
        assert status == "ContactChallenged"

    (sent,) = challenge_emails(cluster, "left@example.com")
    assert sent["preferredLocale"] == "de-DE" and sent["returnUrl"] == "https://example.com/back"
    assert contact_state(cluster, "left@example.com")["status"] == "Unsubscribed"


def test_resubscribe_reports_what_cannot_be_unsuppressed(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    seed(cluster, [suppressed("bounced@example.com", "HardBounced", at(2))])
    status = platform.resubscribe(ACCOUNT, "bounced@example.com", preferred_locale=None,
                                  return_url=None)
    assert status == "ContactCannotBeUnsuppressed"
    assert challenge_emails(cluster, "bounced@example.com") == []


def test_resubscribe_lifts_an_address_suppressed_by_the_account_at_once(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform
) -> None:
    seed(cluster, [suppressed("byyou@example.com", "Suppressed", at(2))])
    status = platform.resubscribe(ACCOUNT, "byyou@example.com", preferred_locale=None,
                                  return_url=None)
    assert status == "ContactAdded"
    assert contact_state(cluster, "byyou@example.com")["status"] == "Subscribed"
    assert challenge_emails(cluster, "byyou@example.com") == []


@pytest.mark.parametrize(("email", "locale", "message"), [
    ("not-an-address", None, "Email is not a valid email address. ERROR_PARAMETER_INVALID"),
    ("left@example.com", "xx-XX", "The request is invalid."),
])
def test_a_refused_resubscribe_is_a_bad_request_with_dotdigitals_message(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform, email: str,
    locale: str | None, message: str,
) -> None:
    seed(cluster, [suppressed("left@example.com", "Unsubscribed", at(2))])
    with pytest.raises(BadRequest) as caught:
        platform.resubscribe(ACCOUNT, email, preferred_locale=locale, return_url=None)
    assert caught.value.status == 400
    assert caught.value.detail == message
    assert challenge_emails(cluster, "left@example.com") == []
