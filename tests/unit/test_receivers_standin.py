"""The receivers stand-in: what arrives is read back, and a drop rule loses exactly what it names (the negative
controls' "a receiver that drops only the expected alert")."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
import requests

from pytest_mnops.standins.receivers import Receivers


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    with Receivers(host="127.0.0.1") as running:
        yield running


def _texts(receivers: Receivers, channel: str) -> list[str]:
    return [str(i["payload"]) for i in requests.get(f"{receivers.url}/received?channel={channel}", timeout=5).json()]


def _mail(receivers: Receivers, subject: str) -> None:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, "am@example.org", "sre@example.org"
    message.set_content("body")
    with smtplib.SMTP(*receivers.smtp_address) as smtp:
        smtp.send_message(message)


def test_a_drop_rule_accepts_and_loses_only_the_notifications_it_names(receivers: Receivers) -> None:
    assert requests.post(f"{receivers.url}/drops", json={"channel": "pager", "containing": "HighLatencyP95"}).ok
    for alert in ("HighLatencyP95", "HighErrorRate"):
        for channel in ("pager", "slack"):
            answer = requests.post(f"{receivers.url}/{channel}", json={"alerts": [{"alertname": alert}]}, timeout=5)
            assert answer.status_code == 200, "a dropping receiver still acknowledges, as a broken integration does"
    assert _texts(receivers, "pager") == [str({"alerts": [{"alertname": "HighErrorRate"}]})]
    assert len(_texts(receivers, "slack")) == 2
    assert requests.get(f"{receivers.url}/drops", timeout=5).json() == [
        {"channel": "pager", "containing": "HighLatencyP95"}
    ]


def test_a_rule_without_a_channel_drops_on_every_channel_email_included(receivers: Receivers) -> None:
    requests.post(f"{receivers.url}/drops", json={"containing": "Rollback verified"}, timeout=5)
    _mail(receivers, "[mnops] Rollback verified: default/app revision 3 -> 2")
    _mail(receivers, "[mnops] Rollback FAILED: default/app revision 3 -> 2")
    requests.post(f"{receivers.url}/slack", json={"text": "Rollback verified"}, timeout=5)
    assert [i["payload"]["subject"] for i in receivers.inbox.items("email")] == [
        "[mnops] Rollback FAILED: default/app revision 3 -> 2"
    ]
    assert receivers.inbox.items("slack") == []


def test_deleting_the_drops_restores_delivery_and_keeps_the_inbox(receivers: Receivers) -> None:
    requests.post(f"{receivers.url}/slack", json={"text": "before"}, timeout=5)
    requests.post(f"{receivers.url}/drops", json={"channel": "slack", "containing": "x"}, timeout=5)
    requests.post(f"{receivers.url}/slack", json={"text": "x lost"}, timeout=5)
    assert requests.delete(f"{receivers.url}/drops", timeout=5).ok
    requests.post(f"{receivers.url}/slack", json={"text": "x after"}, timeout=5)
    assert [i["payload"]["text"] for i in receivers.inbox.items("slack")] == ["before", "x after"]
    assert requests.get(f"{receivers.url}/drops", timeout=5).json() == []


def test_a_rule_that_would_drop_everything_is_refused(receivers: Receivers) -> None:
    answer = requests.post(f"{receivers.url}/drops", json={"channel": "slack"}, timeout=5)
    assert answer.status_code == 400 and "containing" in answer.json()["error"]
    requests.post(f"{receivers.url}/slack", json={"text": "kept"}, timeout=5)
    assert len(receivers.inbox.items("slack")) == 1


def test_delete_elsewhere_still_empties_the_inbox(receivers: Receivers) -> None:
    requests.post(f"{receivers.url}/slack", json={"text": "old"}, timeout=5)
    requests.delete(f"{receivers.url}/received", timeout=5)
    assert receivers.inbox.items() == []
