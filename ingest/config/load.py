"""Read and validate ``config.toml`` into the typed, frozen settings of ``ingest.config.settings``.

Every key has a default; a mistake (bad TOML, unknown key, wrong type or
value) raises :class:`ConfigError` whose message names the file, the key and
what is expected, so the CLI can print it and exit 2.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ingest.config import schema
from ingest.config.settings import (
    DEFAULT_CONFIG,
    ArchiveSettings,
    BackfillSettings,
    Config,
    ConfigError,
    DigestSettings,
    FeedSettings,
    FetchSettings,
    NotifySettings,
    Paths,
    RelevanceSettings,
    ScheduleSettings,
    StoreSettings,
    WebSettings,
    WorkerSettings,
    check_listen,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


MAX_DURATION = 100 * 365.25 * 86400  # longer durations are typing errors (and overflow dates)


def parse_duration(value: str | int | float) -> float:
    """Seconds in '90s', '5m', '2h', '1d', '1w' (a bare number is seconds)."""
    if isinstance(value, bool):
        raise ValueError("a duration such as \"90s\", \"5m\", \"2h\" or \"1d\"")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError("a duration such as \"90s\", \"5m\", \"2h\" or \"1d\"")
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if not 0 <= seconds <= MAX_DURATION:  # also NaN and inf
        raise ValueError("a duration between 0 and 100 years" if seconds == seconds else "a finite duration")
    return seconds


class _Reader:
    """Pops typed values out of one TOML table, naming file and key on error."""

    def __init__(self, file: Path, data: dict, section: str) -> None:
        self.file, self.section, self.known = file, section, sorted(schema.names(section))
        table = data.get(section, {})
        if not isinstance(table, dict):
            self.fail("", f"a table [{section}]", table)
        self.table = dict(table)

    def where(self, key: str) -> str:
        return f"{self.section}.{key}" if key else self.section

    def fail(self, key: str, expected: str, got: Any, secret: bool = False) -> None:
        shown = "a value (hidden: it may hold a secret)" if secret else repr(got)
        raise ConfigError(f"{self.file}: [{self.where(key)}] expected {expected}, got {shown}")

    def get(self, key: str, kind: type, default: Any, *, check: Callable[[Any], bool] | None = None,
            expected: str = "", secret: bool = False) -> Any:
        assert key in self.known, f"[{self.where(key)}] is read but not declared in ingest.config.schema"
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(key, expected or kind.__name__, value, secret)
        if check is not None and not check(value):
            self.fail(key, expected, value, secret)
        return value

    def duration(self, key: str, default: float, minimum: float = 0.0) -> float:
        assert key in self.known, f"[{self.where(key)}] is read but not declared in ingest.config.schema"
        if key not in self.table:
            return default
        raw = self.table.pop(key)
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            self.fail(key, str(exc), raw)
        if seconds < minimum:
            self.fail(key, f"a duration of at least {minimum:g}s", raw)
        return seconds

    def done(self) -> None:
        for key in self.table:
            hint = difflib.get_close_matches(key, self.known, n=1)
            tip = f"; did you mean {hint[0]!r}?" if hint else f"; known keys: {', '.join(self.known)}"
            raise ConfigError(f"{self.file}: unknown key [{self.where(key)}]{tip}")


def _check_url(file: Path, where: str, url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{file}: [{where}] expected a feed URL string, got {url!r}")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{file}: [{where}] expected an http:// or https:// URL with a host, got {url!r}")
    return url.strip()


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)
_FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "if-none-match",
                      "if-modified-since", "accept-encoding"}  # the fetcher sets these itself
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def header_value_ok(value: str) -> bool:
    """What httpx can send as a header value: one line of printable ASCII."""
    return bool(value.strip()) and value.isascii() and value.isprintable() and len(value) <= 8192


def proxy_reason(value: str) -> str | None:
    """Why ``value`` is not a usable proxy URL (None when it is)."""
    parts = urlsplit(value)
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        return f"a proxy URL such as \"http://proxy:3128\" or \"socks5://127.0.0.1:1080\" ({', '.join(PROXY_SCHEMES)})"
    try:
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError:
        return "a proxy URL with a valid port"
    if parts.scheme.startswith("socks"):
        try:
            import socksio  # noqa: F401
        except ImportError:
            return "an http(s) proxy: SOCKS needs the socksio package (pip install 'httpx[socks]')"
    return None


def _feed(file: Path, i: int, item: Any) -> FeedSettings:
    where = f"feeds[{i}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{file}: [{where}] expected a [[feeds]] table with url = \"...\", got {item!r}")
    if "url" not in item:
        raise ConfigError(f"{file}: [{where}] missing key url; add url = \"https://...\"")
    feed_keys = schema.names("feeds")
    for key in item:
        if key not in feed_keys:
            hint = difflib.get_close_matches(key, feed_keys, n=1)
            tip = f"did you mean {hint[0]!r}?" if hint else f"a feed takes {', '.join(feed_keys)}"
            raise ConfigError(f"{file}: unknown key [{where}.{key}]; {tip}")
    url = _check_url(file, f"{where}.url", item["url"])

    def text(key: str, check: Callable[[Any], bool] | None = None, expected: str = "a string") -> str:
        value = item.get(key, "")
        if not isinstance(value, str) or (value and check is not None and not check(value)):
            shown = "(hidden)" if key in ("cookie", "proxy") else repr(value)
            raise ConfigError(f"{file}: [{where}.{key}] expected {expected}, got {shown}")
        return value.strip()

    headers = item.get("headers", {})
    if not isinstance(headers, dict):
        raise ConfigError(f"{file}: [{where}.headers] expected a table such as headers = {{ Authorization = \"...\" }}")
    pairs = []
    for name, value in headers.items():
        if not _TOKEN.match(name) or name.lower() in _FORBIDDEN_HEADERS:
            raise ConfigError(f"{file}: [{where}.headers.{name}] expected a header name the fetcher does not set "
                              f"itself (not {', '.join(sorted(_FORBIDDEN_HEADERS))})")
        if not isinstance(value, str) or not header_value_ok(value):
            raise ConfigError(f"{file}: [{where}.headers.{name}] expected one line of printable ASCII "
                              f"(value hidden)")
        pairs.append((name, value))
    proxy = text("proxy")
    if proxy and (why := proxy_reason(proxy)):
        raise ConfigError(f"{file}: [{where}.proxy] expected {why}")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{file}: [{where}.enabled] expected true or false, got {enabled!r}")
    interval = None
    if "poll_interval" in item:
        try:
            interval = parse_duration(item["poll_interval"])
        except ValueError as exc:
            raise ConfigError(f"{file}: [{where}.poll_interval] expected {exc}, "
                              f"got {item['poll_interval']!r}") from None
        if interval < 1:
            raise ConfigError(f"{file}: [{where}.poll_interval] expected a duration of at least 1s")
    threshold = None
    if "threshold" in item:
        value = item["threshold"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"{file}: [{where}.threshold] expected a number from 0 to 1 (0 keeps every "
                              f"article of this feed), got {value!r}")
        threshold = float(value)
    backfill = item.get("backfill", True)
    if not isinstance(backfill, bool):
        raise ConfigError(f"{file}: [{where}.backfill] expected true or false, got {backfill!r}")
    return FeedSettings(
        url=url, name=text("name"), category=text("category"), backfill=backfill,
        user_agent=text("user_agent", header_value_ok, "a line of printable ASCII"),
        headers=tuple(pairs), cookie=text("cookie", header_value_ok, "a Cookie header value (printable ASCII)"),
        proxy=proxy, enabled=enabled, poll_interval=interval, threshold=threshold)


def _languages() -> set[str]:
    """Languages the relevance model has word frequencies for: wordfreq's wordlist files, listed
    as wordfreq.available_languages lists them ({small,large}_{lang}.msgpack.gz), without importing
    it (and its language tables) into every process that reads a config."""
    import importlib.util

    spec = importlib.util.find_spec("wordfreq")
    folders = spec.submodule_search_locations if spec is not None else None
    if not folders:
        return set()
    return {p.name.split(".")[0].split("_", 1)[1] for p in (Path(folders[0]) / "data").glob("*.msgpack.gz")
            if not p.name.startswith("_") and p.name.split("_", 1)[0] in ("small", "large")}


def _check_cron(expr: str) -> bool:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expr)
    except ValueError:
        return False
    return True


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Load the config file (default ``$INGEST_CONFIG`` or ``./config.toml``)."""
    file = Path(path or os.environ.get("INGEST_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file; `ingest example-config > {file}` writes an annotated "
                          f"one to start from (every key, its default and meaning), or pass --config PATH") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None

    sections = set(schema.TABLES)
    for key in data:
        if key not in sections:
            hint = difflib.get_close_matches(key, sorted(sections), n=1)
            tip = f"; did you mean [{hint[0]}]?" if hint else f"; known sections: {', '.join(sorted(sections))}"
            raise ConfigError(f"{file}: unknown key [{key}]{tip}")
    base = file.resolve().parent

    r = _Reader(file, data, "paths")
    nonempty: dict[str, Any] = {"check": lambda v: bool(v.strip()), "expected": "a non-empty path string"}
    seeds = base / r.get("seeds", str, "seeds", **nonempty)
    store = base / r.get("store", str, "store", **nonempty)
    r.done()

    d = FetchSettings()
    r = _Reader(file, data, "fetch")
    positive: dict[str, Any] = {"check": lambda v: v > 0, "expected": "a number greater than 0"}
    fetch = FetchSettings(
        # checked as httpx will send it: a header value of printable ASCII (a newline or "é" would
        # otherwise fail every request of every poll, not the config)
        user_agent=r.get("user_agent", str, d.user_agent,
                         check=lambda v: header_value_ok(v) and len(v) <= 512,
                         expected="a non-empty line of printable ASCII (at most 512 characters)"),
        timeout=r.duration("timeout", d.timeout, minimum=0.001),
        max_bytes=r.get("max_bytes", int, d.max_bytes, check=lambda v: v >= 1024, expected="an integer >= 1024"),
        concurrency=r.get("concurrency", int, d.concurrency, check=lambda v: v >= 1, expected="an integer >= 1"),
        per_host=r.get("per_host", int, d.per_host, check=lambda v: v >= 1, expected="an integer >= 1"),
        host_delay=r.duration("host_delay", d.host_delay),
        allow_private_networks=r.get("allow_private_networks", bool, d.allow_private_networks,
                                     expected="true or false"),
        robots=r.get("robots", bool, d.robots, expected="true or false"),
        max_entries_per_poll=r.get("max_entries_per_poll", int, d.max_entries_per_poll, **positive),
        proxy=r.get("proxy", str, "", check=lambda v: v == "" or proxy_reason(v) is None,
                    expected="a proxy URL such as \"http://proxy:3128\" or \"socks5://127.0.0.1:1080\" "
                             "(http, https, socks5, socks5h; SOCKS needs httpx[socks])", secret=True),
        trust_env=r.get("trust_env", bool, False, expected="true or false"),
    )
    r.done()

    r = _Reader(file, data, "relevance")
    threshold: float | None = None
    if "threshold" in r.table:
        value = r.table.pop("threshold")
        if value == "auto":
            threshold = None
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
            threshold = float(value)
        else:
            r.fail("threshold", '"auto" or a number from 0 to 1 (0 keeps every article)', value)
    language = r.get("language", str, "en", check=lambda v: v in _languages(),
                     expected=f"a language code the word-frequency data covers ({', '.join(sorted(_languages()))})")
    keep_rejected = r.duration("keep_rejected", RelevanceSettings.keep_rejected)
    r.done()
    relevance = RelevanceSettings(threshold=threshold, language=language, keep_rejected=keep_rejected)

    d2 = ScheduleSettings()
    r = _Reader(file, data, "schedule")
    schedule = ScheduleSettings(
        poll_interval=r.duration("poll_interval", d2.poll_interval, minimum=1),
        digest=r.get("digest", str, d2.digest, check=_check_cron,
                     expected='a 5-field cron expression such as "0 7 * * *" (minute hour day month weekday)'),
        min_interval=r.duration("min_interval", d2.min_interval, minimum=1),
        max_interval=r.duration("max_interval", d2.max_interval, minimum=1),
        max_errors=r.get("max_errors", int, d2.max_errors, check=lambda v: v >= 1, expected="an integer >= 1"),
        shutdown_timeout=r.duration("shutdown_timeout", d2.shutdown_timeout),
    )
    r.done()
    if schedule.min_interval > schedule.max_interval:
        raise ConfigError(f"{file}: [schedule.min_interval] must not exceed [schedule.max_interval]")

    d3 = DigestSettings()
    r = _Reader(file, data, "digest")
    address: dict[str, Any] = {"check": lambda v: v == "" or bool(re.fullmatch(r"[^@\s]+@[^@\s]+", v)),
               "expected": 'an e-mail address such as "me@example.org" (or "" for none)'}
    digest_settings = DigestSettings(
        email=r.get("email", str, d3.email, **address),
        smtp_host=r.get("smtp_host", str, d3.smtp_host, check=lambda v: bool(v.strip()), expected="a host name"),
        smtp_port=r.get("smtp_port", int, d3.smtp_port, check=lambda v: 0 < v < 65536, expected="a port number"),
        smtp_from=r.get("smtp_from", str, d3.smtp_from, **address),
        starttls=r.get("starttls", bool, d3.starttls, expected="true or false"),
    )
    r.done()

    r = _Reader(file, data, "web")
    listen = r.get("listen", str, WebSettings.listen, expected='an address and port such as "127.0.0.1:8750"')
    password = r.get("password", str, "", expected="a string")
    password_file = r.get("password_file", str, "", expected="a path")
    host_names = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
    allowed_hosts = r.get("allowed_hosts", list, [], check=lambda v: all(
        isinstance(h, str) and host_names.fullmatch(h) for h in v),
        expected='a list of host names such as ["ingest.example.org", "*.example.org"] (no port, no scheme)')
    r.done()
    if password_file:
        pw_path = (file.resolve().parent / password_file)
        try:
            password = pw_path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: [web.password_file] cannot read {pw_path}: {exc}") from None
    if listen:
        reason = check_listen(listen, password)
        if reason:
            raise ConfigError(f"{file}: [web.listen] expected {reason}, got {listen!r}")
    web = WebSettings(listen=listen, password=password,
                      allowed_hosts=tuple(h.lower().rstrip(".") for h in allowed_hosts))

    raw_feeds = data.get("feeds", [])
    if not isinstance(raw_feeds, list):
        raise ConfigError(f"{file}: [feeds] expected a list of [[feeds]] tables with url = \"...\"")
    feeds = []
    seen: set[str] = set()
    for i, item in enumerate(raw_feeds):
        feed = _feed(file, i, item)
        if feed.url in seen:
            raise ConfigError(f"{file}: [feeds[{i}].url] {feed.url} is listed twice; remove one")
        seen.add(feed.url)
        feeds.append(feed)

    r = _Reader(file, data, "notify")
    urls = r.get("urls", list, [], check=lambda v: all(isinstance(u, str) and "://" in u for u in v),
                  expected='a list of apprise URLs such as ["ntfy://ntfy.sh/my-topic", "mailtos://..."]', secret=True)
    instant = r.get("instant_above", float, None, check=lambda v: 0 <= v <= 1,
                    expected="a score from 0 to 1 (alerts for kept articles scoring above it)")
    r.done()
    if urls:
        from ingest.config.apprise_urls import url_reason

        for i, u in enumerate(urls):
            if why := url_reason(u.strip()):
                raise ConfigError(f"{file}: [notify.urls[{i}]] expected {why}")
    notify = NotifySettings(urls=tuple(u.strip() for u in urls), instant_above=instant)

    r = _Reader(file, data, "store")
    db_url = r.get("url", str, "", check=lambda v: v == "" or _pg_url_ok(v), secret=True,
                   expected='a PostgreSQL URL such as "postgresql://ingest@db.example/ingest" (or "" for SQLite '
                            'in [paths] store; a password can stay out of the file in ~/.pgpass or PGPASSWORD)')
    store_settings = StoreSettings(url=db_url.strip(), lease=r.duration("lease", StoreSettings.lease, minimum=1))
    r.done()

    r = _Reader(file, data, "worker")
    worker = WorkerSettings(processes=r.get("processes", int, 0, check=lambda v: 0 <= v <= 256,
                                            expected="a number of processes (0: one per core)"),
                            start_settle=r.duration("start_settle", WorkerSettings.start_settle))
    r.done()

    backfill = _backfill(file, data)
    return Config(path=file, paths=Paths(seeds=seeds, store=store), fetch=fetch, relevance=relevance,
                  schedule=schedule, digest=digest_settings, feeds=tuple(feeds), web=web,
                  notify=notify, store=store_settings, worker=worker, backfill=backfill,
                  archive=_archive(file, data))


ARCHIVES = ("wayback", "commoncrawl")


def _backfill(file: Path, data: dict) -> BackfillSettings:
    r = _Reader(file, data, "backfill")
    enabled = r.get("enabled", bool, False, expected="true or false")
    per_day = r.get("max_pages_per_day", int, BackfillSettings.max_pages_per_day, check=lambda v: v >= 0,
                    expected="a number of pages (0: none)")
    names = r.get("archives", list, [], check=lambda v: all(x in ARCHIVES for x in v),
                  expected='a list of "wayback", "commoncrawl"')
    endpoints = r.get("archive_endpoints", dict, {},
                      check=lambda v: all(k in ARCHIVES and isinstance(u, str) and _check_url_ok(u)
                                          for k, u in v.items()),
                      expected='a table such as { wayback = "http://127.0.0.1:8090/cdx" } (keys wayback, '
                               'commoncrawl; http/https URLs)')
    r.done()
    return BackfillSettings(enabled=enabled, max_pages_per_day=per_day, archives=tuple(dict.fromkeys(names)),
                            archive_endpoints=tuple(sorted(endpoints.items())))


def _archive(file: Path, data: dict) -> ArchiveSettings:
    r = _Reader(file, data, "archive")
    enabled = r.get("enabled", bool, ArchiveSettings.enabled, expected="true or false")
    size = r.get("max_file_size", int, ArchiveSettings.max_file_size, check=lambda v: v >= 1_000_000,
                 expected="a number of bytes, at least 1000000 (default 1073741824, 1 GiB)")
    keep = r.duration("keep_rejected", ArchiveSettings.keep_rejected)
    feeds = r.get("feeds", bool, ArchiveSettings.feeds, expected="true or false")
    r.done()
    return ArchiveSettings(enabled=enabled, max_file_size=size, keep_rejected=keep, feeds=feeds)


def _check_url_ok(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _pg_url_ok(value: str) -> bool:
    parts = urlsplit(value.strip())
    return parts.scheme in ("postgresql", "postgres") and (bool(parts.hostname) or "host=" in parts.query)
