"""Rollback notifications: a Slack-compatible webhook and e-mail, each optional, each reported on its own.

A notification is best effort by design: a channel that fails yields a failed :class:`Delivery`, never an
exception, so a broken mail relay can not hide whether the rollback itself worked. Slack webhook URLs carry
their credential in the path, so deliveries name only the webhook's host.
"""

from __future__ import annotations

import ipaddress
import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from pytest_mnops.errors import ConfigError
from pytest_mnops.sandbox.layout import HOST
from pytest_mnops.sandbox.settings import SandboxSettings

if TYPE_CHECKING:
    from pytest_mnops.target import Target

SLACK, EMAIL = "slack", "email"
TIMEOUT_S = 10.0
DEFAULT_SMTP_PORT = 25
DEFAULT_SENDER = "mnops-rollback@machinenativeops.example"
# The recipient monitoring/alertmanager.yml pages; the sandbox's SMTP receiver accepts any address.
SANDBOX_RECIPIENT = "oncall@machinenativeops.example"
ENV_SLACK_URL = "MNOPS_SLACK_WEBHOOK_URL"
ENV_SMTP_HOST = "MNOPS_SMTP_HOST"
ENV_SMTP_PORT = "MNOPS_SMTP_PORT"
ENV_EMAIL_TO = "MNOPS_NOTIFY_EMAIL_TO"


@dataclass(frozen=True)
class Message:
    """What to tell people: a one-line subject, a text body, and labelled facts."""

    subject: str
    text: str
    fields: tuple[tuple[str, str], ...] = ()
    ok: bool = True


@dataclass(frozen=True)
class Delivery:
    """The outcome of one channel; ``destination`` never contains a credential."""

    channel: str
    destination: str
    ok: bool
    detail: str

    def describe(self) -> str:
        return f"{self.channel} -> {self.destination}: {'sent' if self.ok else 'FAILED'} ({self.detail})"


def slack_payload(message: Message) -> dict[str, Any]:
    """Slack incoming-webhook JSON: ``text`` for clients without blocks, blocks for the layout."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": message.text}},
    ]
    if message.fields:
        # Slack renders at most 10 fields per section.
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in message.fields[:10]],
            }
        )
    return {"text": f"{message.subject}\n{message.text}", "blocks": blocks}


def email_message(message: Message, *, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    facts = "\n".join(f"{name}: {value}" for name, value in message.fields)
    mail.set_content(f"{message.text}\n\n{facts}\n" if facts else f"{message.text}\n")
    return mail


def redact_url(url: str) -> str:
    """Scheme, host and port only: ``https://hooks.slack.com/services/T0/B0/secret`` -> ``https://hooks.slack.com/...``.

    Webhook tokens live in the path and basic-auth credentials in the user part; neither is printed.
    """
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/..."


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Notifier:
    """Sends one :class:`Message` to every configured channel; with none configured it sends nothing."""

    def __init__(
        self,
        *,
        slack_url: str | None = None,
        smtp: tuple[str, int] | None = None,
        email_to: tuple[str, ...] = (),
        sender: str = DEFAULT_SENDER,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        if smtp and not email_to:
            raise ConfigError(
                f"SMTP relay {smtp[0]}:{smtp[1]} is set but no recipient. "
                f"Fix: set {ENV_EMAIL_TO} (comma-separated addresses)."
            )
        self.slack_url, self.smtp, self.email_to = slack_url, smtp, email_to
        self.sender, self.timeout_s = sender, timeout_s

    def __repr__(self) -> str:
        return f"Notifier({', '.join(self.channels()) or 'no channels'})"

    def channel_names(self) -> list[str]:
        return ([SLACK] if self.slack_url else []) + ([EMAIL] if self.smtp else [])

    def channels(self) -> list[str]:
        slack = [f"{SLACK} {redact_url(self.slack_url)}"] if self.slack_url else []
        mail = [f"{EMAIL} {self.smtp[0]}:{self.smtp[1]} to {', '.join(self.email_to)}"] if self.smtp else []
        return slack + mail

    # -- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        """Channels from MNOPS_SLACK_WEBHOOK_URL, MNOPS_SMTP_HOST/PORT and MNOPS_NOTIFY_EMAIL_TO."""
        host = env.get(ENV_SMTP_HOST) or None
        raw_port = env.get(ENV_SMTP_PORT) or str(DEFAULT_SMTP_PORT)
        if not raw_port.isdigit():
            raise ConfigError(
                f"environment variable {ENV_SMTP_PORT}={raw_port!r} is not a port number. "
                "Fix: set it to the SMTP relay's port, e.g. 587."
            )
        return cls(
            slack_url=env.get(ENV_SLACK_URL) or None,
            smtp=(host, int(raw_port)) if host else None,
            email_to=_addresses(env.get(ENV_EMAIL_TO, "")),
        )

    @classmethod
    def for_sandbox(
        cls, settings: SandboxSettings, *, receivers_url: str | None = None, env: Mapping[str, str] = os.environ
    ) -> Notifier:
        """The sandbox's own receivers, so drill notifications never leave the machine."""
        return cls(
            slack_url=f"{(receivers_url or settings.receivers_url).rstrip('/')}/{SLACK}",
            smtp=(HOST, settings.ports.smtp),
            email_to=_addresses(env.get(ENV_EMAIL_TO, "")) or (SANDBOX_RECIPIENT,),
        )

    @classmethod
    def for_target(cls, target: Target) -> Notifier:
        return cls.for_run(sandbox=target.sandbox, sandbox_dir=target.sandbox_dir, receivers_url=target.receivers_url)

    @classmethod
    def for_run(cls, *, sandbox: bool, sandbox_dir: Path | str, receivers_url: str | None) -> Notifier:
        """A run's channels: the sandbox's receivers on the sandbox, else the environment's (from_env). The
        plugin's target and a drill's configuration (which holds the same keys) both come here."""
        if not sandbox:
            return cls.from_env()
        settings = SandboxSettings.load(sandbox_dir)
        if settings is None:
            raise ConfigError(
                f"no sandbox settings in {sandbox_dir}, so its receivers are unknown. "
                "Fix: start it with `mnops sandbox up`, or pass the right --mnops-sandbox-dir."
            )
        return cls.for_sandbox(settings, receivers_url=receivers_url)

    # -- sending ----------------------------------------------------------------------------------------
    def send(self, message: Message) -> list[Delivery]:
        deliveries = []
        if self.slack_url:
            deliveries.append(self._slack(self.slack_url, message))
        if self.smtp:
            deliveries.append(self._email(self.smtp, message))
        return deliveries

    def _slack(self, url: str, message: Message) -> Delivery:
        destination = redact_url(url)
        try:
            resp = requests.post(url, json=slack_payload(message), timeout=self.timeout_s)
        except requests.RequestException as exc:
            # The exception text can contain the full URL; report its type only.
            return Delivery(SLACK, destination, False, f"not delivered: {type(exc).__name__}")
        return Delivery(SLACK, destination, resp.ok, f"HTTP {resp.status_code}")

    def _email(self, smtp: tuple[str, int], message: Message) -> Delivery:
        host, port = smtp
        destination = f"{host}:{port} to {', '.join(self.email_to)}"
        mail = email_message(message, sender=self.sender, recipients=self.email_to)
        try:
            with smtplib.SMTP(host, port, timeout=self.timeout_s) as client:
                client.ehlo()
                # Loopback relays (the sandbox's) speak plain SMTP; elsewhere upgrade whenever offered.
                if not _is_loopback(host) and client.has_extn("starttls"):
                    client.starttls()
                    client.ehlo()
                refused = client.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            return Delivery(EMAIL, destination, False, f"not delivered: {exc}")
        if refused:
            return Delivery(EMAIL, destination, False, f"refused for {', '.join(sorted(refused))}")
        return Delivery(EMAIL, destination, True, "accepted")


def _addresses(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())
