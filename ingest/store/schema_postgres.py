"""The PostgreSQL schema and its numbered migrations (table ``schema_version`` holds the number).

The same tables as SQLite's (ingest.store.schema_sqlite) with PostgreSQL's
types, plus what several workers need: article text in ``articles.text`` (the
source of truth; ``ingest corpus sync`` writes the folder), a sequence for the
corpus numbers, weighted ``tsvector`` columns for search, a ``host`` on feeds
and pages (generated from the URL) and the work-sharing tables ``host_leases``,
``workers`` and ``elections``. ``ingest migrate`` applies it; every writer
checks it on open under an advisory lock, so two workers starting at once
cannot race.
"""

from ingest.store.schema_sqlite import SITE_CLEANUP, SITE_LABELS

SCHEMA_VERSION = 8

# the host of a URL, as ingest.sources.urls.host_of gives it (lower-cased, no userinfo or port)
_HOST = r"""lower(substring({col} from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^]]*\]|[^/?#:]*)'))"""

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS feeds (
    id BIGSERIAL PRIMARY KEY,
    config_url TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1,
    enabled INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL DEFAULT 'new',
    state_reason TEXT NOT NULL DEFAULT '',
    etag TEXT, last_modified TEXT, content_hash TEXT,
    last_poll DOUBLE PRECISION, last_success DOUBLE PRECISION, last_error TEXT, last_error_at DOUBLE PRECISION,
    consecutive_errors INTEGER NOT NULL DEFAULT 0,
    errors_since DOUBLE PRECISION,
    next_poll DOUBLE PRECISION, "interval" DOUBLE PRECISION, retry_after DOUBLE PRECISION,
    host TEXT GENERATED ALWAYS AS ({_HOST.format(col="url")}) STORED
);
CREATE INDEX IF NOT EXISTS feeds_due ON feeds (next_poll) WHERE active = 1 AND enabled = 1;
CREATE INDEX IF NOT EXISTS feeds_host ON feeds (host);
CREATE SEQUENCE IF NOT EXISTS article_number MINVALUE 0 START 0;
CREATE TABLE IF NOT EXISTS articles (
    id BIGSERIAL PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    canonical_url TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL, author TEXT NOT NULL DEFAULT '', site TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    published TEXT,
    fetched DOUBLE PRECISION NOT NULL,
    text_hash TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL, threshold DOUBLE PRECISION NOT NULL, terms TEXT NOT NULL DEFAULT '[]',
    path TEXT NOT NULL UNIQUE,
    minhash BYTEA,
    updated DOUBLE PRECISION,
    revisions INTEGER NOT NULL DEFAULT 0,
    withdrawn DOUBLE PRECISION,
    withdrawn_by TEXT,
    day TEXT,                             -- YYYY-MM-DD: published when known, else fetched (UTC)
    text TEXT NOT NULL,                   -- the article's text (the corpus folder is written from it)
    search TSVECTOR GENERATED ALWAYS AS
        (setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', text), 'B')) STORED
);
CREATE INDEX IF NOT EXISTS articles_search ON articles USING GIN (search);
CREATE TABLE IF NOT EXISTS lsh (key BIGINT NOT NULL, article_id BIGINT NOT NULL REFERENCES articles(id));
CREATE INDEX IF NOT EXISTS lsh_key ON lsh(key);
CREATE INDEX IF NOT EXISTS lsh_article ON lsh(article_id);
CREATE INDEX IF NOT EXISTS articles_text_hash ON articles(text_hash);
CREATE INDEX IF NOT EXISTS articles_fetched ON articles(fetched);
CREATE INDEX IF NOT EXISTS articles_day ON articles(day, id);
CREATE TABLE IF NOT EXISTS pages (
    id BIGSERIAL PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    final_url TEXT, fetched DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,                -- kept | rejected | duplicate | empty | blocked | error | deferred
    reason TEXT NOT NULL DEFAULT '',
    score DOUBLE PRECISION, attempts INTEGER NOT NULL DEFAULT 1,
    article_id BIGINT REFERENCES articles(id),
    threshold DOUBLE PRECISION, terms TEXT,
    title TEXT,
    doc BYTEA,
    retry_at DOUBLE PRECISION,            -- deferred, or queued for the worker holding its host (a page job)
    deferred_since DOUBLE PRECISION,
    pending BYTEA,
    search TSVECTOR,                      -- a rejected page's text while it is kept
    host TEXT GENERATED ALWAYS AS ({_HOST.format(col="url")}) STORED
);
CREATE INDEX IF NOT EXISTS pages_retry ON pages(host, retry_at) WHERE retry_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pages_scored ON pages(id) WHERE score IS NOT NULL;
CREATE INDEX IF NOT EXISTS pages_search ON pages USING GIN (search) WHERE search IS NOT NULL;
CREATE TABLE IF NOT EXISTS entries (
    feed_id BIGINT NOT NULL REFERENCES feeds(id),
    key TEXT NOT NULL,
    link TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', published TEXT,
    updated TEXT,
    first_seen DOUBLE PRECISION NOT NULL,
    page_id BIGINT REFERENCES pages(id),
    PRIMARY KEY (feed_id, key)
);
CREATE INDEX IF NOT EXISTS entries_page ON entries(page_id);
CREATE TABLE IF NOT EXISTS sources (
    id BIGSERIAL PRIMARY KEY,             -- insertion order (SQLite's rowid)
    article_id BIGINT NOT NULL REFERENCES articles(id),
    url TEXT NOT NULL,
    feed_id BIGINT REFERENCES feeds(id),
    first_seen DOUBLE PRECISION NOT NULL,
    UNIQUE NULLS NOT DISTINCT (article_id, url, feed_id)
);
CREATE INDEX IF NOT EXISTS sources_url ON sources(url);
CREATE INDEX IF NOT EXISTS sources_feed ON sources(feed_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS digests (
    id BIGSERIAL PRIMARY KEY, created DOUBLE PRECISION NOT NULL, since DOUBLE PRECISION NOT NULL,
    until DOUBLE PRECISION NOT NULL, items INTEGER NOT NULL, path TEXT
);
CREATE INDEX IF NOT EXISTS articles_updated ON articles(updated) WHERE updated IS NOT NULL;
CREATE INDEX IF NOT EXISTS articles_site ON articles(site);
CREATE INDEX IF NOT EXISTS pages_article ON pages(article_id) WHERE article_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS articles_withdrawn ON articles(withdrawn) WHERE withdrawn IS NOT NULL;
CREATE TABLE IF NOT EXISTS stream (page_id BIGINT PRIMARY KEY REFERENCES pages(id), counts BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS verdicts (
    id BIGSERIAL PRIMARY KEY,
    page_id BIGINT NOT NULL UNIQUE REFERENCES pages(id),
    url TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('relevant', 'irrelevant')),
    time DOUBLE PRECISION NOT NULL,
    applied DOUBLE PRECISION,
    decided TEXT  -- the model's decision when the verdict was given: kept, rejected
);
CREATE INDEX IF NOT EXISTS pages_doc ON pages(fetched) WHERE doc IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    digest_id BIGINT NOT NULL REFERENCES digests(id),
    target TEXT NOT NULL,
    sent DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    PRIMARY KEY (digest_id, target)
);
CREATE TABLE IF NOT EXISTS hosts (name TEXT PRIMARY KEY, quiet_until DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS robots (
    origin TEXT PRIMARY KEY,
    expires DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('rules', 'none', 'unreachable')),
    body TEXT,
    host TEXT GENERATED ALWAYS AS ({_HOST.format(col="origin")}) STORED
);
CREATE INDEX IF NOT EXISTS robots_host ON robots(host);
CREATE TABLE IF NOT EXISTS runs (
    id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, started DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION,
    stats TEXT NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS feed_history (
    feed_id BIGINT NOT NULL REFERENCES feeds(id), at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL, "interval" DOUBLE PRECISION, reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feed_history_feed ON feed_history(feed_id, at);
CREATE TABLE IF NOT EXISTS candidates (
    id BIGSERIAL PRIMARY KEY, site TEXT NOT NULL, url TEXT NOT NULL UNIQUE, link TEXT NOT NULL,
    source TEXT NOT NULL, found_in TEXT NOT NULL, date TEXT, title TEXT NOT NULL DEFAULT '',
    prescore DOUBLE PRECISION, found DOUBLE PRECISION NOT NULL, fetched DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS candidates_site ON candidates(site, fetched);
CREATE TABLE IF NOT EXISTS backfill_sites (
    site TEXT PRIMARY KEY, discovered DOUBLE PRECISION, discovery_requests BIGINT NOT NULL DEFAULT 0,
    stopped TEXT, stopped_at DOUBLE PRECISION, recent TEXT NOT NULL DEFAULT '',
    sample_fetched BIGINT NOT NULL DEFAULT 0, sample_kept BIGINT NOT NULL DEFAULT 0,
    validators TEXT NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS archive_records (  -- where each fetched page's WARC response record is
    page_id BIGINT PRIMARY KEY, file TEXT NOT NULL, "offset" BIGINT NOT NULL, length BIGINT NOT NULL,
    uri TEXT NOT NULL, date TEXT NOT NULL, payload_digest TEXT NOT NULL, kind TEXT NOT NULL, corrupt TEXT
);
CREATE TABLE IF NOT EXISTS host_leases (  -- a host's feeds and page jobs belong to one worker at a time
    host TEXT PRIMARY KEY,
    worker TEXT,                          -- the worker holding it (NULL: free)
    expires DOUBLE PRECISION NOT NULL DEFAULT 0,  -- the lease ends here unless renewed
    next_start DOUBLE PRECISION NOT NULL DEFAULT 0  -- no request to the host before this (host_delay)
);
CREATE TABLE IF NOT EXISTS workers (      -- workers seen recently (ingest status)
    name TEXT PRIMARY KEY, started DOUBLE PRECISION NOT NULL, seen DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS elections (    -- once-per-slot jobs (a digest at its cron time): one winner each
    job TEXT NOT NULL, slot DOUBLE PRECISION NOT NULL, worker TEXT NOT NULL, time DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job, slot)
);
"""

# version -> statements run before SCHEMA when upgrading to it
# 2: a site name holding a URL's userinfo is dropped; 3: verdicts record the decision they judged;
# 4: a site label that is no site's name (a headline, a host with its port) is dropped (schema_sqlite's 8);
# 5: articles.day, the corpus page's order (schema_sqlite's 9); 6: feed_history (schema_sqlite's 10);
# 7: candidates (11); 8: backfill_sites (12)
MIGRATIONS: dict[int, list[str]] = {2: [SITE_CLEANUP],
                                    3: ["ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS decided TEXT"],
                                    4: [SITE_LABELS],
                                    5: ["ALTER TABLE articles ADD COLUMN IF NOT EXISTS day TEXT",
                                        "UPDATE articles SET day = CASE WHEN published ~ '^\\d{4}-\\d{2}-\\d{2}' THEN "
                                        "substr(published, 1, 10) ELSE to_char(to_timestamp(fetched) AT TIME ZONE "
                                        "'UTC', 'YYYY-MM-DD') END"],
                                    6: [], 7: [], 8: []}  # feed_history, candidates, backfill_sites come from SCHEMA
