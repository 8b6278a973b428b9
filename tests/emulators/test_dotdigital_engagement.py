"""dotdigital emulator: campaign activity and survey/form responses over HTTPS."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin

API_USER = "apiuser-engagement@apiconnector.com"
PASSWORD = "Eng4gement!pass"

SUMMARY_FIELDS = {
    "contactId", "email", "numOpens", "numPageViews", "numClicks", "numForwards",
    "numEstimatedForwards", "numReplies", "dateSent", "dateFirstOpened", "dateLastOpened",
    "firstOpenIp", "unsubscribed", "softBounced", "hardBounced",
}


def campaigns() -> list[dict[str, Any]]:
    return [
        {
            "id": 10, "name": "Spring sale", "subject": "Spring!", "fromName": "Shop",
            "fromAddress": {"id": 2, "email": "news@shop.example"},
            "htmlContent": "<p>Hi</p>", "plainTextContent": "Hi",
            "dateSent": "2024-03-01T09:00:00Z",
            "activities": [
                {
                    "email": "Ann@Example.com", "numForwards": 1, "numEstimatedForwards": 4,
                    "opens": [
                        {"date": "2024-03-02T10:00:00Z", "ipAddress": "192.168.15.106",
                         "mailClient": "Outlook"},
                        {"date": "2024-03-01T10:00:00Z", "ipAddress": "10.0.0.1"},
                    ],
                    "clicks": [{"date": "2024-03-02T10:01:00Z", "url": "https://shop.example/a"}],
                    "pageViews": [{"date": "2024-03-02T10:02:00Z", "url": "https://shop.example/b"}],
                    "replies": [{"date": "2024-03-02T11:00:00Z", "message": "Thanks"}],
                    "roiDetails": [{"date": "2024-03-02T12:00:00Z", "markerName": "basket",
                                    "dataType": "Numeric", "value": 12.5}],
                },
                {"email": "bob@example.com", "unsubscribed": True},
                {"email": "gone@example.com", "contactId": 900, "hardBounced": True},
                {"email": "cy@example.com", "hardBounced": True},
            ],
        },
        {"id": 11, "name": "Winter", "dateSent": "2023-12-01T09:00:00Z",
         "activities": [{"email": "ann@example.com"}]},
        {"id": 12, "name": "Draft", "status": "Unsent"},
    ]


def surveys() -> list[dict[str, Any]]:
    return [
        {
            "id": 7, "name": "Event Registration Form", "dateCreated": "2024-01-01T00:00:00Z",
            "pages": [{"id": 1, "fields": [
                {"id": 15, "type": "email", "text": "Email address", "isRequired": True},
                {"id": 9, "type": "radiolist", "choices": [{"id": 2, "text": "Under 18"}]},
            ]}],
            "responses": [
                {"email": "ann@example.com", "dateStarted": "2024-03-05T09:00:00Z",
                 "dateCompleted": "2024-03-05T09:02:00Z",
                 "givenAnswers": [{"fieldId": 15, "value": "ann@example.com"},
                                  {"fieldId": 9, "value": 2}]},
                {"email": "bob@example.com", "dateStarted": "2024-02-01T09:00:00Z"},
            ],
        },
        {"id": 8, "name": "Preferences", "isAssignedToAddressBook": True,
         "dateCreated": "2023-01-01T00:00:00Z"},
    ]


def account(**extra: Any) -> dict[str, Any]:
    return {
        "id": 52, "apiUser": API_USER, "password": PASSWORD, "region": "r1",
        "contacts": [
            {"id": 1, "email": "ann@example.com"},
            {"id": 2, "email": "bob@example.com", "status": "Unsubscribed"},
            {"id": 3, "email": "cy@example.com", "suppression": {"reason": "HardBounced"}},
            {"id": 4, "email": "dee@example.com"},
        ],
        "campaigns": campaigns(), "surveys": surveys(), **extra,
    }


class Api:
    def __init__(self, cluster: EmulatorCluster) -> None:
        self.base = f"{cluster.dotdigital_server.base_url}/r1"
        self.verify = cluster.ca_bundle

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(
            f"{self.base}{path}", params=params, auth=(API_USER, PASSWORD), verify=self.verify,
            timeout=10,
        )


@pytest.fixture
def api(cluster: EmulatorCluster, dotdigital_admin: Admin) -> Api:
    dotdigital_admin.seed({"accounts": [account()]})
    return Api(cluster)


def test_lists_campaigns_without_content_and_gets_one_with_it(api: Api) -> None:
    listed = api.get("/v2/campaigns").json()
    assert [campaign["id"] for campaign in listed] == [10, 11, 12]
    assert listed[0] == {
        "id": 10, "name": "Spring sale", "subject": "Spring!", "fromName": "Shop",
        "fromAddress": {"id": 2, "email": "news@shop.example"}, "htmlContent": None,
        "plainTextContent": None, "replyAction": "Unset", "replyToAddress": None,
        "isSplitTest": False, "status": "Sent",
    }
    single = api.get("/v2/campaigns/10").json()
    assert single["htmlContent"] == "<p>Hi</p>" and single["plainTextContent"] == "Hi"
    missing = api.get("/v2/campaigns/99")
    assert (missing.status_code, missing.json()) == (
        404, {"message": "Error: ERROR_CAMPAIGN_NOT_FOUND"}
    )


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2024-03-02", [10]),
        ("2024-03-02T12:00:00+00:00", [10]),  # "+" left unencoded, as Magento sends it
        ("2024-03-02T12:00:00.001Z", []),
        ("2023-11-30", [10, 11]),
    ],
)
def test_campaigns_with_activity_since(api: Api, date: str, expected: list[int]) -> None:
    response = api.get(f"/v2/campaigns/with-activity-since/{date}")
    assert [campaign["id"] for campaign in response.json()] == expected


def test_per_contact_summaries_resolve_contacts_by_email(api: Api) -> None:
    rows = api.get("/v2/campaigns/10/activities").json()
    assert [(row["contactId"], row["email"]) for row in rows] == [
        (1, "Ann@Example.com"), (2, "bob@example.com"), (900, "gone@example.com"),
        (3, "cy@example.com"),
    ]
    ann = rows[0]
    assert set(ann) == SUMMARY_FIELDS
    assert ann == {
        "contactId": 1, "email": "Ann@Example.com", "numOpens": 2, "numPageViews": 1,
        "numClicks": 1, "numForwards": 1, "numEstimatedForwards": 4, "numReplies": 1,
        "dateSent": "2024-03-01T09:00:00.000Z", "dateFirstOpened": "2024-03-01T10:00:00.000Z",
        "dateLastOpened": "2024-03-02T10:00:00.000Z", "firstOpenIp": "10.0.0.1",
        "unsubscribed": False, "softBounced": False, "hardBounced": False,
    }
    assert rows[1]["unsubscribed"] is True and rows[1]["dateFirstOpened"] is None
    page = api.get("/v2/campaigns/10/activities", select=2, skip=1).json()
    assert [row["contactId"] for row in page] == [2, 900]


def test_activities_since_date_and_their_paging_limits(api: Api) -> None:
    since = api.get("/v2/campaigns/10/activities/since-date/2024-03-02T11:30:00Z").json()
    assert [row["email"] for row in since] == ["Ann@Example.com"]
    assert api.get("/v2/campaigns/10/activities/since-date/2024-03-01", select=2000).ok
    for path, select in [("/v2/campaigns/10/activities/since-date/2024-03-01", 2001),
                         ("/v2/campaigns/10/activities", 1001)]:
        refused = api.get(path, select=select)
        assert refused.status_code == 400
        assert refused.json()["message"].endswith("ERROR_PARAMETER_INVALID")
    bad_date = api.get("/v2/campaigns/10/activities/since-date/yesterday")
    assert bad_date.status_code == 400


def test_one_contacts_activity_and_its_events(api: Api) -> None:
    assert api.get("/v2/campaigns/10/activities/1").json()["numClicks"] == 1
    opens = api.get("/v2/campaigns/10/activities/1/opens").json()
    assert [item["dateOpened"] for item in opens] == [
        "2024-03-01T10:00:00.000Z", "2024-03-02T10:00:00.000Z",
    ]
    assert opens[1] == {
        "contactId": 1, "email": "Ann@Example.com", "mailClient": "Outlook",
        "mailClientVersion": "", "ipAddress": "192.168.15.106", "userAgent": "", "isHtml": True,
        "isForward": False, "dateOpened": "2024-03-02T10:00:00.000Z",
    }
    (click,) = api.get("/v2/campaigns/10/activities/1/clicks").json()
    assert click["url"] == "https://shop.example/a" and click["dateClicked"]
    (view,) = api.get("/v2/campaigns/10/activities/1/page-views").json()
    assert view == {"contactId": 1, "email": "Ann@Example.com", "url": "https://shop.example/b",
                    "dateViewed": "2024-03-02T10:02:00.000Z"}
    (reply,) = api.get("/v2/campaigns/10/activities/1/replies").json()
    assert reply["replyType"] == "Reply" and reply["fromAddress"] == "Ann@Example.com"
    (roi,) = api.get("/v2/campaigns/10/activities/1/roi-details").json()
    assert (roi["markerName"], roi["dataType"], roi["value"]) == ("basket", "Numeric", 12.5)
    assert api.get("/v2/campaigns/10/activities/1/replies", select=5).ok
    assert api.get("/v2/campaigns/10/activities/1/replies", select=6).status_code == 400
    # A contact the campaign never reached has no events.
    assert api.get("/v2/campaigns/10/activities/4/opens").json() == []
    for path in ("/v2/campaigns/10/activities/4", "/v2/campaigns/10/activities/555"):
        missing = api.get(path)
        assert (missing.status_code, missing.json()) == (
            404, {"message": "Error: ERROR_CONTACT_NOT_FOUND"}
        )


def test_campaign_level_events(api: Api) -> None:
    assert len(api.get("/v2/campaigns/10/opens").json()) == 2
    recent = api.get("/v2/campaigns/10/opens/since-date/2024-03-02").json()
    assert [item["ipAddress"] for item in recent] == ["192.168.15.106"]
    assert len(api.get("/v2/campaigns/10/clicks/since-date/2024-03-02").json()) == 1
    assert len(api.get("/v2/campaigns/10/page-views/since-date/2024-03-02").json()) == 1
    assert api.get("/v2/campaigns/10/roi-details/since-date/2024-03-03").json() == []


def test_hard_bouncing_contacts_are_contacts_of_the_account(api: Api) -> None:
    contacts = api.get("/v2/campaigns/10/hard-bouncing-contacts").json()
    assert [(item["id"], item["status"], item["dataFields"]) for item in contacts] == [
        (3, "HardBounced", None),
    ]


def test_campaign_summary_counts_and_ratios(api: Api) -> None:
    summary = api.get("/v2/campaigns/10/summary").json()
    assert summary["dateSent"] == "2024-03-01T09:00:00.000Z"
    assert (summary["numSent"], summary["numTotalSent"], summary["numTextSent"]) == (4, 4, 0)
    assert (summary["numHardBounces"], summary["numDelivered"]) == (2, 2)
    assert (summary["numUniqueOpens"], summary["numOpens"], summary["numClicks"]) == (1, 2, 1)
    assert (summary["numUnsubscribes"], summary["numRecipientsClicked"]) == (1, 1)
    assert summary["percentageDelivered"] == 0.5
    assert summary["percentageHardBounces"] == 0.5
    assert summary["percentageUniqueOpens"] == 0.5
    assert summary["percentageClicksToOpens"] == 0.5
    assert api.get("/v2/campaigns/12/summary").json()["percentageOpens"] == 0.0


def test_surveys_filtered_by_assignment_and_paging(api: Api) -> None:
    listed = api.get("/v2/surveys").json()
    assert [survey["id"] for survey in listed] == [7, 8]
    form = listed[0]
    assert form["fieldCount"] == 2 and form["state"] == "Active"
    assert (form["totalCompleteResponses"], form["totalIncompleteResponses"]) == (1, 1)
    assert form["firstResponseDate"] == "2024-02-01T09:00:00.000Z"
    assert form["lastResponseDate"] == "2024-03-05T09:02:00.000Z"
    assigned = api.get("/v2/surveys", assignedToAddressBookOnly="true").json()
    assert [survey["id"] for survey in assigned] == [8]
    unassigned = api.get("/v2/surveys", AssignedToAddressBookOnly="False").json()
    assert [survey["id"] for survey in unassigned] == [7]
    assert api.get("/v2/surveys", select=500).ok
    assert api.get("/v2/surveys", select=501).status_code == 400
    assert api.get("/v2/surveys", assignedToAddressBookOnly="maybe").status_code == 400
    since = api.get("/v2/surveys/with-activity-since/2024-03-01").json()
    assert [survey["id"] for survey in since] == [7]


def test_survey_fields_and_responses(api: Api) -> None:
    (page,) = api.get("/v2/surveys/7/fields").json()
    assert [field["id"] for field in page["fields"]] == [15, 9]
    assert page["fields"][0]["assignedContactDataExistsAction"] == "OverwriteData"
    responses = api.get("/v2/surveys/7/responses").json()
    assert responses[0] == {
        "id": 1, "email": "ann@example.com", "started": True,
        "dateStarted": "2024-03-05T09:00:00.000Z", "complete": True,
        "dateCompleted": "2024-03-05T09:02:00.000Z",
        "givenAnswers": [{"fieldId": 15, "subFieldId": None, "value": "ann@example.com"},
                         {"fieldId": 9, "subFieldId": None, "value": 2}],
    }
    assert responses[1]["complete"] is False and responses[1]["dateCompleted"] is None
    recent = api.get("/v2/surveys/7/responses/with-activity-since/2024-03-01").json()
    assert [response["id"] for response in recent] == [1]
    missing = api.get("/v2/surveys/70/responses")
    assert (missing.status_code, missing.json()) == (
        404, {"message": "Error: ERROR_SURVEY_NOT_FOUND"}
    )


def test_activity_added_after_the_seed_shows_up_since_its_date(
    api: Api, dotdigital_admin: Admin
) -> None:
    added = dotdigital_admin.call("POST", "engagement/campaign-activity", {
        "accountId": 52, "campaignId": 11,
        "activities": [{"email": "dee@example.com", "dateSent": "2024-04-01T00:00:00Z",
                        "clicks": [{"date": "2024-04-02T00:00:00Z", "url": "https://x.example"}]}],
    })
    assert added == {"activities": 2}
    since = api.get("/v2/campaigns/with-activity-since/2024-04-01").json()
    assert [campaign["id"] for campaign in since] == [11]
    (row,) = api.get("/v2/campaigns/11/activities/since-date/2024-04-01").json()
    assert (row["contactId"], row["numClicks"]) == (4, 1)
    responses = dotdigital_admin.call("POST", "engagement/survey-responses", {
        "accountId": 52, "surveyId": 8,
        "responses": [{"email": "dee@example.com", "dateStarted": "2024-04-03T00:00:00Z"}],
    })
    assert responses == {"responses": 1}
    assert [s["id"] for s in api.get("/v2/surveys/with-activity-since/2024-04-03").json()] == [8]


def test_state_round_trips_the_seed(api: Api, dotdigital_admin: Admin) -> None:
    (seeded,) = dotdigital_admin.state(accountId=52)["accounts"]
    assert [campaign["id"] for campaign in seeded["campaigns"]] == [10, 11, 12]
    ann = seeded["campaigns"][0]["activities"][0]
    assert ann["opens"][0] == {
        "date": "2024-03-01T10:00:00.000Z", "mailClient": "", "mailClientVersion": "",
        "ipAddress": "10.0.0.1", "userAgent": "", "isHtml": True, "isForward": False,
    }
    assert seeded["surveys"][0]["responses"][1]["email"] == "bob@example.com"


@pytest.mark.parametrize(
    "extra",
    [
        {"campaigns": [{"id": 1, "name": "C", "activities": [{"email": "a@example.com"}]}]},
        {"campaigns": [{"id": 1, "name": "C", "dateSent": "2024-01-01",
                        "activities": [{"email": "a@example.com", "opens": [{"ip": "x"}]}]}]},
        {"campaigns": [{"id": 1, "name": "C", "status": "Sent!"}]},
        {"campaigns": [{"id": 1, "name": "C", "dateSent": "2024-01-01",
                        "activities": [{"email": "a@example.com"}, {"email": "A@example.com"}]}]},
        {"surveys": [{"id": 1, "name": "S", "responses": [{"email": "a@example.com"}]}]},
        {"surveys": [{"id": 1, "name": "S", "state": "Open"}]},
    ],
)
def test_bad_engagement_seeds_load_nothing(
    cluster: EmulatorCluster, dotdigital_admin: Admin, extra: dict[str, Any]
) -> None:
    response = requests.post(
        f"{cluster.dotdigital_server.base_url}/_emulator/seed",
        json={"accounts": [account(**extra)]}, verify=cluster.ca_bundle, timeout=10,
    )
    assert response.status_code == 400
    assert dotdigital_admin.state()["accounts"] == []


def test_bad_admin_activity_is_refused(cluster: EmulatorCluster, api: Api) -> None:
    url = f"{cluster.dotdigital_server.base_url}/_emulator/engagement/campaign-activity"
    for body in ({"accountId": 52, "campaignId": 99, "activities": []},
                 {"accountId": 52, "campaignId": 10},
                 {"accountId": 52, "campaignId": 10, "activities": [{"email": "nope"}]}):
        assert requests.post(url, json=body, verify=cluster.ca_bundle, timeout=10).status_code \
            == 400
    assert len(api.get("/v2/campaigns/10/activities").json()) == 4
