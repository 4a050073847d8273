"""The typed, frozen settings every stage receives (what ``config.toml`` says, with defaults).

Below everything that reads them; ``ingest.config`` reads and validates the file into these.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from ingest import __version__

DEFAULT_USER_AGENT = f"seed-ingest/{__version__} (+https://github.com/seed-ingest/seed-ingest)"
DEFAULT_CONFIG = "config.toml"


class ConfigError(Exception):
    """A configuration problem; the message is meant for the user as is."""


@dataclass(frozen=True)
class Paths:
    seeds: Path
    store: Path


@dataclass(frozen=True)
class FetchSettings:
    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 20.0
    max_bytes: int = 10_000_000
    concurrency: int = 128
    per_host: int = 2
    host_delay: float = 1.0
    allow_private_networks: bool = False
    robots: bool = True
    max_entries_per_poll: int = 200
    proxy: str = field(default="", repr=False)  # http://, https://, socks5:// (may hold a password)
    trust_env: bool = False  # take HTTP(S)_PROXY / ALL_PROXY / NO_PROXY from the environment


@dataclass(frozen=True)
class RelevanceSettings:
    threshold: float | None = None  # None = "auto"
    language: str = "en"
    keep_rejected: float = 30 * 86400.0  # how long rejected pages keep their text (for rescore and review)


@dataclass(frozen=True)
class ScheduleSettings:
    poll_interval: float = 1800.0
    digest: str = "0 7 * * *"
    min_interval: float = 300.0
    max_interval: float = 86400.0
    max_errors: int = 10
    shutdown_timeout: float = 30.0


@dataclass(frozen=True)
class DigestSettings:
    """Optional e-mail delivery of each scheduled digest (off while ``email`` is empty).
    Credentials come from $INGEST_SMTP_USER / $INGEST_SMTP_PASSWORD, never from the file."""

    email: str = ""
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_from: str = "seed-ingest@localhost"
    starttls: bool = True


@dataclass(frozen=True)
class WebSettings:
    """The web view (ingest.out.web): served by ``ingest run`` and ``ingest serve``."""

    listen: str = "127.0.0.1:8750"  # "" turns it off inside the service
    password: str = field(default="", repr=False)  # HTTP Basic (any user name); required beyond loopback
    # Host header names the view answers to besides its listen address and localhost (a proxy's name);
    # any other gets 400, so a DNS-rebinding page cannot reach the view from a browser
    allowed_hosts: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(listen: str, password: str) -> str | None:
    """Why ``listen`` cannot be served (None when it can)."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return 'an address and port such as "127.0.0.1:8750" (or "" for none)'
    if not is_loopback(host.strip("[]")) and not password:
        return ("a loopback address (127.0.0.1, ::1, localhost) unless [web] password or password_file is set: "
                "the web view can change the corpus")
    return None


@dataclass(frozen=True)
class NotifySettings:
    """Where digests (and optional instant alerts) are sent, as apprise URLs (ingest.out.notify)."""

    urls: tuple[str, ...] = field(default=(), repr=False)  # they hold tokens and passwords
    instant_above: float | None = None  # alert per kept article scoring above this (None: no alerts)


@dataclass(frozen=True)
class FeedSettings:
    """One ``[[feeds]]`` table. The request settings (user_agent, headers, cookie, proxy) apply to the
    feed and to its article pages; headers and cookie only to pages on the feed's own host."""

    url: str
    name: str = ""
    category: str = ""
    user_agent: str = ""  # "" = [fetch] user_agent
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold tokens
    cookie: str = field(default="", repr=False)
    proxy: str = field(default="", repr=False)  # "" = [fetch] proxy
    enabled: bool = True
    poll_interval: float | None = None  # a floor: the adaptive schedule never polls more often
    threshold: float | None = None  # overrides [relevance] threshold for this feed's pages
    backfill: bool = True  # the service's backfill (and `ingest backfill` without URLs) includes its site


@dataclass(frozen=True)
class BackfillSettings:
    """``ingest backfill`` and the service's backfill between polls (ingest.run.backfill)."""

    enabled: bool = False  # the service backfills the followed sites between polls
    max_pages_per_day: int = 500  # article pages the service's backfill fetches per day
    archives: tuple[str, ...] = ()  # "wayback", "commoncrawl": web-archive indexes asked (a third party)
    archive_endpoints: tuple[tuple[str, str], ...] = ()  # archive -> its CDX API URL (a mirror, a test)


@dataclass(frozen=True)
class ArchiveSettings:
    """The WARC archive of every article page fetched (ingest.store.archive)."""

    enabled: bool = True
    max_file_size: int = 1 << 30  # bytes: a new .warc.gz file after this
    keep_rejected: float = 30 * 86400.0  # a file of rejected pages' records goes once its last write is older
    feeds: bool = False  # feed documents too (their own files; a 304 writes nothing)


@dataclass(frozen=True)
class WorkerSettings:
    """This process's share of the machine."""

    processes: int = 0  # extraction and scoring processes (0: one per core)
    start_settle: float = 5.0  # PostgreSQL: wait this long after registering before the first claim


@dataclass(frozen=True)
class StoreSettings:
    """Where the index lives: SQLite in [paths] store (no url), or PostgreSQL for several workers."""

    url: str = field(default="", repr=False)  # postgresql://user:password@host/db: may hold a password
    lease: float = 60.0  # a worker's hold on a host lasts this long unless renewed (kill -9: others wait this)


@dataclass(frozen=True)
class Config:
    path: Path
    paths: Paths
    fetch: FetchSettings = field(default_factory=FetchSettings)
    relevance: RelevanceSettings = field(default_factory=RelevanceSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    feeds: tuple[FeedSettings, ...] = ()
    web: WebSettings = field(default_factory=WebSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    backfill: BackfillSettings = field(default_factory=BackfillSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)

    def feed(self, url: str) -> FeedSettings | None:
        """The [[feeds]] table of a feed by its URL as written."""
        return self._feeds_by_url.get(url)

    @functools.cached_property
    def _feeds_by_url(self) -> dict[str, FeedSettings]:  # a poll looks up every feed: not a scan each
        by_url: dict[str, FeedSettings] = {}
        for f in self.feeds:
            by_url.setdefault(f.url, f)  # the first, as a scan would find
        return by_url
