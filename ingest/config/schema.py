"""Every key of config.toml, declared once: its table, type, default and meaning.

The reader (ingest.config.load) takes the known keys of each table from here
(an unknown key is an error with a suggestion), a test loads a config holding
every key and checks each default against the settings an empty config gives,
and the configuration reference (docs/configuration.md) is generated from it:
the three cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.config.settings import DEFAULT_USER_AGENT


@dataclass(frozen=True)
class Key:
    table: str  # "fetch"; "feeds" is the [[feeds]] array of tables
    name: str
    kind: str  # what the value is, in words
    default: str | None  # as TOML (None: unset)
    meaning: str  # Markdown
    example: str | None = None  # a valid TOML value when the default cannot stand in (tests, docs)


TABLES = ("paths", "fetch", "relevance", "schedule", "digest", "web", "notify", "store", "worker", "backfill",
          "archive", "feeds")

KEYS: tuple[Key, ...] = (
    Key("paths", "seeds", "path", '"seeds"', "folder of seed articles (`*.txt`, UTF-8), relative to the config file"),
    Key("paths", "store", "path", '"store"', "where `corpus/`, `ingest.db` and `digests/` are written"),

    Key("fetch", "user_agent", "string", f'"{DEFAULT_USER_AGENT}"',
        "sent with every request; its first word is the robots.txt product token"),
    Key("fetch", "timeout", "duration", '"20s"', "for a whole request: connect, headers and body"),
    Key("fetch", "max_bytes", "integer", "10000000",
        "per response, counted after decompression (gzip bombs stop here)"),
    Key("fetch", "concurrency", "integer", "128",
        "requests in flight overall (per host, `per_host` and `host_delay` keep it polite; this is the machine's cap)"),
    Key("fetch", "per_host", "integer", "2", "requests in flight per host (feeds and pages alike)"),
    Key("fetch", "host_delay", "duration", '"1s"', "minimum time between request starts to one host"),
    Key("fetch", "allow_private_networks", "boolean", "false",
        "when false, URLs from feed content (entry links, any redirect) may not reach loopback, private, "
        "link-local or reserved addresses; only http/https are ever fetched; 169.254.169.254 is always "
        "refused. Configured feed URLs are trusted"),
    Key("fetch", "robots", "boolean", "true",
        "honour robots.txt for article pages (cached per site for a day, in the store, so across processes)"),
    Key("fetch", "max_entries_per_poll", "integer", "200",
        "new entries taken per feed per poll, newest first; the rest next time"),
    Key("fetch", "proxy", "URL", '""',
        "send every request through this proxy: `http://`, `https://`, `socks5://`, `socks5h://` "
        "(SOCKS via httpx[socks]); may hold `user:password@`, never shown", '"http://127.0.0.1:3128"'),
    Key("fetch", "trust_env", "boolean", "false",
        "take the proxy from `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY`, honouring `NO_PROXY` (off by "
        "default: a service should not change behaviour with its environment)"),

    Key("relevance", "threshold", '"auto" or number 0–1', '"auto"',
        "the score a page needs to be kept (0 keeps every article); scores are the model's probability "
        "that a text is on topic (the cosine similarity while the store holds fewer than 60 pages)"),
    Key("relevance", "language", "language code", '"en"',
        "language of the general word statistics (wordfreq) used as the idf prior; checked at load"),
    Key("relevance", "keep_rejected", "duration", '"30d"',
        "how long rejected pages keep their extracted text for `rescore`, `review` and `mark --relevant`; "
        "older ones keep score and terms only"),

    Key("schedule", "poll_interval", "duration", '"30m"',
        'a feed\'s starting interval (durations: `"90s"`, `"5m"`, `"2h"`, `"1d"`, `"1w"`; at most 100 years)'),
    Key("schedule", "digest", "cron", '"0 7 * * *"', "when digests are written: cron (minute hour day month "
        "weekday), local time"),
    Key("schedule", "min_interval", "duration", '"5m"', "adaptive intervals stay within min … max"),
    Key("schedule", "max_interval", "duration", '"24h"', "also caps a feed's own hints (ttl, max-age); a "
        "server's Retry-After is its request, not a schedule: honoured up to 30 days whatever this says"),
    Key("schedule", "max_errors", "integer", "10",
        "consecutive failures (spanning at least 3 days) before a feed is marked failing"),
    Key("schedule", "shutdown_timeout", "duration", '"30s"', "how long a stopping service lets the running poll "
        "finish"),

    Key("digest", "email", "e-mail address", '""', "send each recorded digest to this address (off when empty)",
        '"me@example.org"'),
    Key("digest", "smtp_host", "host name", '"localhost"', "the SMTP server"),
    Key("digest", "smtp_port", "integer", "587", "the SMTP server's port"),
    Key("digest", "smtp_from", "e-mail address", '"seed-ingest@localhost"', "the sender address"),
    Key("digest", "starttls", "boolean", "true",
        "upgrade the SMTP connection with STARTTLS (credentials are never sent without it)"),

    Key("web", "listen", "address:port", '"127.0.0.1:8750"',
        "where `ingest run` serves the web view (`\"\"`: not at all); also `ingest serve`'s default. Any "
        "address but loopback needs a password"),
    Key("web", "password", "string", '""', "HTTP Basic password for the web view (any user name). Never logged",
        '"correct horse"'),
    Key("web", "password_file", "path", '""',
        "a file holding the password (relative to the config), to keep it out of the config file"),
    Key("web", "allowed_hosts", "list of host names", "[]",
        "host names the web view answers to besides its listen address, `localhost` and any IP address "
        '(e.g. your proxy\'s `["ingest.example.org"]`; `"*.example.org"` covers subdomains). A request '
        "naming any other `Host` gets 400 before any handler runs (DNS rebinding)", '["ingest.example.org"]'),

    Key("notify", "urls", "list of apprise URLs", "[]",
        "apprise URLs each recorded digest is sent to: `ntfys://ntfy.sh/topic`, `slack://…`, `matrixs://…`, "
        "`mailtos://…`, `json://host/path` …; checked at load; never logged (targets are named by scheme and "
        "host only)", '["json://127.0.0.1:9/hook"]'),
    Key("notify", "instant_above", "number 0–1", None,
        "also send an alert per kept article whose score is above this, right after the poll", "0.9"),

    Key("store", "url", "PostgreSQL URL", '""',
        "a PostgreSQL URL (`postgresql://user@host/db`) moves the index there and makes `ingest run` a worker "
        "(see [Scaling out](scaling.md)); empty: SQLite in `[paths] store`. A password can stay out of the "
        "file (`~/.pgpass`, `PGPASSWORD`); never shown", '"postgresql://ingest@127.0.0.1/ingest"'),
    Key("store", "lease", "duration", '"60s"',
        "how long a worker's hold on a host lasts unless renewed (every third of it); after a worker dies, "
        "the others wait this long before taking its hosts"),

    Key("worker", "processes", "integer", "0",
        "extraction and scoring processes of this `ingest run`/`poll` (0: one per core)"),
    Key("worker", "start_settle", "duration", '"5s"',
        "on PostgreSQL, a starting worker waits this long after registering before it claims hosts, so "
        "workers started together (a compose file, units on several machines) each take a fair share; "
        "raise it when workers start further apart (at most half of `[store] lease` is used)"),

    Key("feeds", "url", "URL", None, "the feed (RSS, Atom, RDF, JSON Feed, news sitemap); the only required key",
        '"https://example.org/feed.xml"'),
    Key("feeds", "name", "string", '""', "shown in status, digests and the OPML export"),
    Key("feeds", "category", "string", '""', 'the OPML folder, nested with `" / "`'),
    Key("backfill", "enabled", "boolean", "false",
        "the service backfills the followed sites' history between polls (`ingest backfill` runs one now; "
        "see docs/backfill.md)"),
    Key("backfill", "max_pages_per_day", "integer", "500",
        "article pages the service's backfill fetches per day (discovery requests not counted)"),
    Key("backfill", "archives", "list of strings", "[]",
        'web-archive indexes asked for a site\'s history: `"wayback"`, `"commoncrawl"` (off by default: it '
        "asks a third party which sites you follow)", '["wayback"]'),
    Key("backfill", "archive_endpoints", "table", "{}",
        "an archive's CDX API URL, when not the public one (a mirror, a local pywb)",
        '{ wayback = "http://127.0.0.1:8090/cdx" }'),
    Key("archive", "enabled", "boolean", "true",
        "every article page fetched (kept, rejected or a duplicate) is written to `store/archive/` as WARC "
        "request and response records (see docs/archive.md)"),
    Key("archive", "max_file_size", "integer", "1073741824",
        "bytes after which a new `.warc.gz` file starts"),
    Key("archive", "keep_rejected", "duration", '"30d"',
        "a file of rejected pages' records is removed once its last write is older than this (whole files: "
        "nothing is rewritten); kept articles' records stay as long as the article"),
    Key("archive", "feeds", "boolean", "false",
        "feed documents too, each one read (a 304 Not Modified writes nothing), in `feeds-*.warc.gz` files"),

    Key("feeds", "enabled", "boolean", "true",
        "`false` pauses the feed: not polled, its state and history kept, `status` says *paused*"),
    Key("feeds", "poll_interval", "duration", None,
        "a floor: the adaptive schedule (and backoff) never polls this feed more often", '"1h"'),
    Key("feeds", "threshold", "number 0–1", None,
        "overrides `[relevance] threshold` for this feed's pages (0 keeps all of them); a page several feeds "
        "list gets the lowest of their thresholds", "0.2"),
    Key("feeds", "backfill", "boolean", "true",
        "`false` leaves this feed's site out of the service's backfill and of `ingest backfill` without URLs"),
    Key("feeds", "user_agent", "string", '""', "for this feed and its article pages (empty: `[fetch] user_agent`)"),
    Key("feeds", "headers", "table", "{}",
        'extra request headers (`headers = { Authorization = "Bearer …" }`), sent to the feed\'s own host only '
        "(never to another host, never after a redirect elsewhere); never logged or shown"),
    Key("feeds", "cookie", "string", '""', "a `Cookie` value, sent like `headers`"),
    Key("feeds", "proxy", "URL", '""', "a proxy for this feed and its pages (empty: `[fetch] proxy`)"),
)


def names(table: str) -> list[str]:
    """The keys a table takes."""
    return [k.name for k in KEYS if k.table == table]


def reference() -> str:
    """The configuration reference in Markdown (docs/configuration.md)."""
    out = ["# Configuration reference", "",
           "<!-- generated by `python docs/generate.py` from ingest/config/schema.py; do not edit -->", "",
           "`config.toml` is TOML; paths are relative to the config file and every key but a feed's `url` has "
           "a default. A bad file, an unknown key or a bad value exits 2 with a message naming the file, the "
           "key and what is expected, e.g. `config.toml: unknown key [fetch.timout]; did you mean 'timeout'?`.",
           "Durations are written `\"90s\"`, `\"5m\"`, `\"2h\"`, `\"1d\"` or `\"1w\"` (a bare number is seconds).",
           ""]
    for table in TABLES:
        out += ["## `[[feeds]]`" if table == "feeds" else f"## `[{table}]`", ""]
        if table == "feeds":
            out += ["One table per feed; `ingest feeds add URL` and `ingest feeds import FILE` write them.", ""]
        out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for k in KEYS:
            if k.table == table:
                default = f"`{k.default}`" if k.default is not None else "unset"
                out.append(f"| `{k.name}` | {k.kind} | {default} | {k.meaning} |")
        out.append("")
    return "\n".join(out)


def example() -> str:
    """An annotated config.toml (`ingest example-config`): every key commented out at its default, with
    its meaning, and a feed table to copy; it loads as it is (no feed yet)."""
    import re

    def plain(text: str) -> str:  # the Markdown of a meaning, as a comment reads it
        return re.sub(r"`([^`]*)`", r"\1", text).replace("*", "")

    out = ["# seed-ingest configuration. Every key has a default but a feed's url; uncomment what you change.",
           "# Durations: \"90s\", \"5m\", \"2h\", \"1d\", \"1w\" (a bare number is seconds). Paths are relative",
           "# to this file. `ingest --help` lists the commands.", ""]
    for table in TABLES:
        if table == "feeds":
            continue
        out.append(f"[{table}]")
        for k in KEYS:
            if k.table == table:
                out.append(f"# {plain(k.meaning)}")
                out.append(f"# {k.name} = {k.default if k.default is not None else k.example}")
        out.append("")
    out.append("# One [[feeds]] table per feed: `ingest feeds add URL` finds a site's feeds and appends them here.")
    out.append("# [[feeds]]")
    for k in KEYS:
        if k.table == "feeds":
            out.append(f"# {plain(k.meaning)}")
            out.append(f"# {k.name} = {k.default if k.default is not None and k.name != 'url' else k.example}")
    return "\n".join(out) + "\n"
