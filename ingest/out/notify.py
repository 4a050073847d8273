"""Delivery: digests (and optional instant alerts) to the user, by one path.

Targets are ``[notify] urls`` (apprise: ntfy, Slack, Matrix, Discord,
mailto, a generic JSON webhook …) and the ``[digest] email`` address (SMTP
here, with smtplib: credentials from the environment, only after STARTTLS
with a verified certificate, which apprise's e-mail plugin cannot promise).
Both are :class:`Target`\\s, planned, sent and recorded the same way:

* ``plan`` (reads the store): the digest just recorded, plus earlier digests
  whose delivery to a target failed within RETRY_WINDOW;
* ``send`` (network, in a thread, no store): each message to each target;
* ``record`` (one writer): which deliveries succeeded, so a failed one is
  retried at the next digest and a sent one never twice.

Notify URLs hold tokens and passwords: they never reach a log line, an error
or the database (targets are keyed by a hash); apprise's own log lines are
captured and scrubbed of every part of every configured URL.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from ingest.config import Config, DigestSettings
from ingest.config.apprise_urls import instantiate
from ingest.run.chunk import Alert

if TYPE_CHECKING:
    from ingest.store import SqlStore

log = logging.getLogger("ingest")

RETRY_WINDOW = 7 * 86400.0  # a digest that could not be delivered is retried for this long
REDACTED = "***"


class DeliveryError(Exception):
    """A message not delivered; the text holds no secret."""


@dataclass(frozen=True)
class Message:
    title: str
    body: str  # Markdown
    html: str | None = None  # e-mail's HTML alternative


# -- targets ----------------------------------------------------------------------

def _secrets(url: str) -> list[str]:
    """Every part of a notify URL that may be a secret, longest first (for scrubbing text)."""
    parts = urlsplit(url)
    pieces = {url, parts.netloc, parts.path, parts.query}
    pieces |= {unquote(p) for p in (parts.username, parts.password, parts.hostname) if p}
    pieces |= {unquote(seg) for seg in parts.path.split("/")}
    pieces |= {unquote(v) for _, v in parse_qsl(parts.query, keep_blank_values=True)}
    return sorted((p for p in pieces if len(p) >= 4), key=len, reverse=True)


def scrub(text: str, urls: Sequence[str]) -> str:
    for url in urls:
        for piece in _secrets(url):
            text = text.replace(piece, REDACTED)
    return text


class AppriseTarget:
    """One apprise URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = "apprise:" + hashlib.sha256(url.encode()).hexdigest()[:16]
        service = instantiate(url)
        # scheme and host only, from apprise's privacy form (which masks a host that is a token, as
        # Slack's): paths, user names and queries of webhook URLs often hold the secret
        masked = urlsplit(service.url(privacy=True)) if service is not None else urlsplit(url)._replace(netloc="?")
        self.label = f"{masked.scheme}://{masked.netloc.rpartition('@')[2]}"

    def send(self, msg: Message) -> None:
        import apprise

        with apprise.LogCapture(level=logging.INFO) as captured:
            client = apprise.Apprise()
            ok = client.add(self.url) and client.notify(body=msg.body, title=msg.title,
                                                        body_format=apprise.NotifyFormat.MARKDOWN)
        if not ok:
            # apprise's own warnings say why ("date - LEVEL - message"): the messages, scrubbed
            lines = [ln.split(" - ", 2)[-1] for ln in captured.getvalue().splitlines()
                     if " - WARNING - " in ln or " - ERROR - " in ln]
            why = scrub(" | ".join(lines[-3:]), [self.url]) or "apprise reported a failure"
            raise DeliveryError(why)


class EmailTarget:
    """The [digest] email address, over SMTP."""

    def __init__(self, settings: DigestSettings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.env = os.environ if env is None else env
        self.key = "email:" + settings.email
        self.label = settings.email

    def send(self, msg: Message) -> None:
        import smtplib
        import ssl
        from email.message import EmailMessage

        s = self.settings
        user, password = self.env.get("INGEST_SMTP_USER"), self.env.get("INGEST_SMTP_PASSWORD")
        if user and password and not s.starttls:
            raise DeliveryError("refusing to send SMTP credentials without STARTTLS ([digest] starttls = false)")
        mail = EmailMessage()
        mail["Subject"] = msg.title
        mail["From"] = s.smtp_from
        mail["To"] = s.email
        mail.set_content(msg.body)
        if msg.html:
            mail.add_alternative(msg.html, subtype="html")
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=60) as smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if user and password:
                    smtp.login(user, password)
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            text = str(exc)
            for secret in (password, user):
                if secret:
                    text = text.replace(secret, REDACTED)
            raise DeliveryError(f"{type(exc).__name__}: {text}") from None


Target = AppriseTarget | EmailTarget


def targets(config: Config, env: Mapping[str, str] | None = None) -> list[Target]:
    out: list[Target] = [AppriseTarget(u) for u in config.notify.urls]
    if config.digest.email:
        out.append(EmailTarget(config.digest, env))
    return out


# -- digests ----------------------------------------------------------------------

@dataclass(frozen=True)
class Delivery:
    digest_id: int
    target: Target
    message: Message


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def digest_message(root: Path, since: float, until: float, items: int, path: str | None) -> Message:
    """A recorded digest as a message: its Markdown file as the body (the HTML file as e-mail's
    alternative), the period and count in the title."""
    period = _day(until) if _day(since) == _day(until) else f"{_day(since)} to {_day(until)}"
    title = f"seed-ingest digest {period}: {items} new {'story' if items == 1 else 'stories'}"
    body, html = f"{items} new stories (the digest file is missing)", None
    if path:
        md = root / path
        with contextlib.suppress(OSError):
            body = md.read_text(encoding="utf-8")
        try:
            html = md.with_suffix(".html").read_text(encoding="utf-8")
        except OSError:
            html = None
    return Message(title, body, html)


def plan(store: SqlStore, all_targets: Sequence[Target], digest_id: int | None, now: float) -> list[Delivery]:
    """The digest ``digest_id`` for every target, and the digests whose delivery to a target failed
    within RETRY_WINDOW (oldest first)."""
    out = []
    for t in all_targets:
        ids = store.undelivered_digests(t.key, now - RETRY_WINDOW)
        if digest_id is not None and digest_id not in ids:
            ids.append(digest_id)
        for row in store.digests_by_ids(ids):
            out.append(Delivery(row["id"], t, digest_message(store.root, row["since"], row["until"], row["items"],
                                                             row["path"])))
    return out


def send(deliveries: Sequence[Delivery]) -> list[tuple[Delivery, str | None]]:
    """Send each delivery; (delivery, error or None). Network only: safe in a thread."""
    results: list[tuple[Delivery, str | None]] = []
    for d in deliveries:
        try:
            d.target.send(d.message)
            results.append((d, None))
        except DeliveryError as exc:
            results.append((d, str(exc)))
        except Exception as exc:  # a plugin's bug must not end the digest job
            results.append((d, scrub(f"{type(exc).__name__}: {exc}",
                                     [d.target.url] if isinstance(d.target, AppriseTarget) else [])))
    return results


def record(store: SqlStore, results: Sequence[tuple[Delivery, str | None]], now: float) -> None:
    for d, error in results:
        store.record_delivery(d.digest_id, d.target.key, now, error)
        if error:
            log.warning("event=delivery_failed target=%s digest=%d reason=%r (retried at the next digest)",
                        d.target.label, d.digest_id, error)
        else:
            log.info("event=delivered target=%s digest=%d", d.target.label, d.digest_id)


# -- instant alerts -----------------------------------------------------------------

def alert_message(a: Alert) -> Message:
    terms = ", ".join(a.terms[:6]) or "-"
    body = f"[{a.title}]({a.url})\n\n{a.site} · score {a.score:.3f} · matched: {terms}"
    return Message(f"seed-ingest: {a.title}"[:250], body)


def send_alerts(all_targets: Sequence[Target], alerts: Sequence[Alert]) -> None:
    """One message per alert to every apprise target (not e-mail: digests only). Failures are logged;
    an alert is not retried (the digest carries the article anyway)."""
    apprise_targets = [t for t in all_targets if isinstance(t, AppriseTarget)]
    for a in alerts:
        for t in apprise_targets:
            try:
                t.send(alert_message(a))
                log.info("event=alert_sent target=%s url=%s", t.label, a.url)
            except DeliveryError as exc:
                log.warning("event=alert_failed target=%s url=%s reason=%r", t.label, a.url, str(exc))


def send_alerts_to(config: Config, alerts: Sequence[Alert]) -> None:
    """:func:`send_alerts` to the targets ``config`` names."""
    if alerts:
        send_alerts(targets(config), alerts)


def alert_sender(config: Config) -> Callable[[Sequence[Alert]], None]:
    """What a poll calls with its alerts: :func:`send_alerts_to` this config."""
    return functools.partial(send_alerts_to, config)
