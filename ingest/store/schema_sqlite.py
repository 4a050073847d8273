"""The SQLite schema and its numbered migrations (``schema_version`` holds the number).

A new store is created from SCHEMA. An older one runs MIGRATIONS[v] for each
version after its own (ADD COLUMN statements are skipped when the column is
already there, so an interrupted migration can run again), then SCHEMA (new
tables and indexes come from its IF NOT EXISTS).
"""

SCHEMA_VERSION = 12

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS feeds (
    id INTEGER PRIMARY KEY,
    config_url TEXT NOT NULL UNIQUE,      -- as written in config.toml
    url TEXT NOT NULL,                    -- where it is fetched now (after 301/308)
    name TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1,    -- 0 once removed from the config
    enabled INTEGER NOT NULL DEFAULT 1,   -- 0 while the config says enabled = false (paused, state kept)
    state TEXT NOT NULL DEFAULT 'new',    -- new | ok | error | failing | disabled
    state_reason TEXT NOT NULL DEFAULT '',
    etag TEXT, last_modified TEXT, content_hash TEXT,
    last_poll REAL, last_success REAL, last_error TEXT, last_error_at REAL,
    consecutive_errors INTEGER NOT NULL DEFAULT 0,
    errors_since REAL,                    -- start of the current run of failures
    next_poll REAL, interval REAL, retry_after REAL
);
CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,       -- the running NNN of the corpus file
    url TEXT NOT NULL,                    -- first URL it was fetched from
    canonical_url TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL, author TEXT NOT NULL DEFAULT '', site TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    published TEXT,                        -- ISO date/time when known
    fetched REAL NOT NULL,
    text_hash TEXT NOT NULL,
    score REAL NOT NULL, threshold REAL NOT NULL, terms TEXT NOT NULL DEFAULT '[]',
    path TEXT NOT NULL UNIQUE,            -- corpus file, relative to the store
    minhash BLOB,                         -- near-duplicate signature (ingest.judge.dedup), NULL for short texts
    updated REAL,                         -- when the text last changed in place
    revisions INTEGER NOT NULL DEFAULT 0, -- how many times it changed
    withdrawn REAL,                       -- when it left the corpus folder (file in withdrawn/), else NULL
    withdrawn_by TEXT,                    -- user (a verdict) | rescore (ingest rescore --apply)
    day TEXT                              -- YYYY-MM-DD: published when known, else fetched (UTC): the corpus order
);
CREATE TABLE IF NOT EXISTS lsh (          -- near-duplicate index: LSH band keys of each article
    key INTEGER NOT NULL, article_id INTEGER NOT NULL REFERENCES articles(id)
);
CREATE INDEX IF NOT EXISTS lsh_key ON lsh(key);
CREATE INDEX IF NOT EXISTS articles_text_hash ON articles(text_hash);
CREATE INDEX IF NOT EXISTS articles_fetched ON articles(fetched);
CREATE INDEX IF NOT EXISTS articles_day ON articles(day, id);
CREATE TABLE IF NOT EXISTS pages (        -- every page fetched, kept or not: never fetched twice
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,             -- normalised entry link
    final_url TEXT, fetched REAL NOT NULL,
    outcome TEXT NOT NULL,                -- kept | rejected | duplicate | empty | blocked | error | deferred
    reason TEXT NOT NULL DEFAULT '',
    score REAL, attempts INTEGER NOT NULL DEFAULT 1, -- requests sent that failed (deferrals do not count)
    article_id INTEGER REFERENCES articles(id),
    threshold REAL, terms TEXT,           -- the decision: threshold in force, terms that matched (JSON)
    title TEXT,
    doc BLOB,                             -- a rejected page's extracted text and metadata (zlib JSON) kept for
                                          -- [relevance] keep_rejected so rescore and review need no refetch
    retry_at REAL,                        -- deferred (host's Retry-After, robots.txt unreadable): fetch after this
    deferred_since REAL,                  -- first deferral (given up after MAX_DEFERRAL)
    -- a deferred page's link as given and its sources (zlib JSON)
    pending BLOB
);
CREATE INDEX IF NOT EXISTS pages_retry ON pages(retry_at) WHERE retry_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pages_scored ON pages(id) WHERE score IS NOT NULL;
CREATE TABLE IF NOT EXISTS entries (      -- feed entries seen
    feed_id INTEGER NOT NULL REFERENCES feeds(id),
    key TEXT NOT NULL,                    -- guid/id, else normalised link
    link TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', published TEXT,
    updated TEXT,                         -- the entry's updated date when last processed
    first_seen REAL NOT NULL,
    page_id INTEGER REFERENCES pages(id),
    PRIMARY KEY (feed_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (      -- provenance: every feed/URL an article came from
    article_id INTEGER NOT NULL REFERENCES articles(id),
    url TEXT NOT NULL,
    feed_id INTEGER REFERENCES feeds(id),
    first_seen REAL NOT NULL,
    UNIQUE (article_id, url, feed_id)
);
CREATE INDEX IF NOT EXISTS sources_url ON sources(url);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS digests (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, since REAL NOT NULL, until REAL NOT NULL,
    items INTEGER NOT NULL, path TEXT
);
CREATE INDEX IF NOT EXISTS articles_updated ON articles(updated) WHERE updated IS NOT NULL;
CREATE INDEX IF NOT EXISTS articles_site ON articles(site);
CREATE INDEX IF NOT EXISTS pages_article ON pages(article_id) WHERE article_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS articles_withdrawn ON articles(withdrawn) WHERE withdrawn IS NOT NULL;
CREATE TABLE IF NOT EXISTS stream (     -- the model's window: term counts of recent kept and rejected pages
    page_id INTEGER PRIMARY KEY REFERENCES pages(id),
    counts BLOB NOT NULL                  -- zlib JSON {term: count}
);
CREATE TABLE IF NOT EXISTS verdicts (     -- the user's verdicts (ingest mark), never overridden by the model
    id INTEGER PRIMARY KEY,
    page_id INTEGER NOT NULL UNIQUE REFERENCES pages(id),
    url TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('relevant', 'irrelevant')),
    time REAL NOT NULL,
    applied REAL,                         -- when the corpus folder followed it (NULL: pending)
    decided TEXT                          -- the model's decision when the verdict was given: kept, rejected
);
CREATE INDEX IF NOT EXISTS pages_doc ON pages(fetched) WHERE doc IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(  -- full text of kept articles (rowid = articles.id)
    title, text, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5(  -- rejected pages while their text is kept (rowid = pages.id)
    title, text, tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO articles_fts (articles_fts, rank) VALUES ('rank', 'bm25(5.0, 1.0)');  -- a title match weighs 5 times
INSERT INTO pages_fts (pages_fts, rank) VALUES ('rank', 'bm25(5.0, 1.0)');
CREATE TABLE IF NOT EXISTS deliveries (   -- each digest's delivery to each target ([notify] urls, [digest] email)
    digest_id INTEGER NOT NULL REFERENCES digests(id),
    target TEXT NOT NULL,                 -- "apprise:<hash of the URL>" or "email:<address>": never the URL
    sent REAL,                            -- when delivered, NULL while it failed (retried at the next digest)
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    PRIMARY KEY (digest_id, target)
);
CREATE TABLE IF NOT EXISTS hosts (        -- what a host asked for, kept between runs (ingest.sources.fetch.HostMemory)
    name TEXT PRIMARY KEY,
    quiet_until REAL NOT NULL             -- Retry-After: no request before this
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS robots (       -- robots.txt per origin, reused until it expires
    origin TEXT PRIMARY KEY,
    expires REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('rules', 'none', 'unreachable')),
    body TEXT                             -- the file, for state 'rules'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, started REAL NOT NULL, finished REAL,
    stats TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS feed_history (  -- a feed's changes of state and interval (its page shows them)
    feed_id INTEGER NOT NULL REFERENCES feeds(id), at REAL NOT NULL,
    state TEXT NOT NULL, interval REAL, reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feed_history_feed ON feed_history(feed_id, at);
CREATE TABLE IF NOT EXISTS candidates (   -- backfill: article URLs a site's history lists (ingest.store.candidates)
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,                   -- the origin, scheme://host[:port]
    url TEXT NOT NULL UNIQUE,             -- normalised
    link TEXT NOT NULL,                   -- as listed
    source TEXT NOT NULL,                 -- sitemap | feed | archive | link
    found_in TEXT NOT NULL,               -- the sitemap, feed page, archive index or page that listed it
    date TEXT, title TEXT NOT NULL DEFAULT '',
    prescore REAL,                        -- the model's score of its URL words and title (NULL: not ranked yet)
    found REAL NOT NULL, fetched REAL     -- when it was recorded, when its page was fetched (NULL: not yet)
);
CREATE INDEX IF NOT EXISTS candidates_site ON candidates(site, fetched);
CREATE TABLE IF NOT EXISTS backfill_sites (  -- backfill: each site's discovery and where its fetching stopped
    site TEXT PRIMARY KEY,                -- the origin, scheme://host[:port]
    discovered REAL,                      -- when its sitemaps, feed pages and archives were last read
    discovery_requests INTEGER NOT NULL DEFAULT 0,
    stopped TEXT,                         -- yield | budget | exhausted | deferred (NULL: never ran)
    stopped_at REAL,
    recent TEXT NOT NULL DEFAULT '',      -- outcomes of its last ranked fetches, oldest first (1 kept, 0 not)
    sample_fetched INTEGER NOT NULL DEFAULT 0, sample_kept INTEGER NOT NULL DEFAULT 0,  -- the random sample
    validators TEXT NOT NULL DEFAULT '{}'  -- JSON: each sitemap's ETag and Last-Modified, for a conditional GET
);
CREATE TABLE IF NOT EXISTS archive_records (  -- where each fetched page's WARC response record is (store/archive/)
    page_id INTEGER PRIMARY KEY,          -- pages.id
    file TEXT NOT NULL,                   -- the .warc.gz file's name in store/archive/
    offset INTEGER NOT NULL,              -- the record's first byte (a gzip member of its own)
    length INTEGER NOT NULL,              -- its bytes, compressed
    uri TEXT NOT NULL,                    -- WARC-Target-URI, the final URL
    date TEXT NOT NULL,                   -- WARC-Date
    payload_digest TEXT NOT NULL,         -- WARC-Payload-Digest
    kind TEXT NOT NULL,                   -- kept | rejected: which files hold it
    corrupt TEXT                          -- what `ingest check --repair` found wrong with it (NULL: whole)
);
"""

# schema 6: trafilatura's site name fell back to the URL's netloc, userinfo (user:password@) included;
# such a name is dropped (every output then labels the site by its host alone)
SITE_CLEANUP = "UPDATE articles SET site = '' WHERE site LIKE '%@%' OR site LIKE '%://%'"

# schema 8: a site label that is no site's name (trafilatura's guess took a "Headline | Site" title's headline,
# or fell back to the URL's netloc with its port) is dropped: every output then labels the site by its host
SITE_LABELS = ("UPDATE articles SET site = '' WHERE (site LIKE '%:%' AND site NOT LIKE '% %') OR length(site) > 100 "
               "OR site = title")

# columns added since version 1 (new tables and indexes come from SCHEMA's IF NOT EXISTS)
MIGRATIONS = {
    2: ["ALTER TABLE articles ADD COLUMN withdrawn REAL", "ALTER TABLE articles ADD COLUMN withdrawn_by TEXT",
        "ALTER TABLE pages ADD COLUMN threshold REAL", "ALTER TABLE pages ADD COLUMN terms TEXT",
        "ALTER TABLE pages ADD COLUMN title TEXT", "ALTER TABLE pages ADD COLUMN doc BLOB",
        # schema 1's relevance background; the model's window (table stream) replaced it
        "DROP TABLE IF EXISTS term_df", "DELETE FROM meta WHERE key = 'n_docs'"],
    4: [],  # the full-text tables come from SCHEMA; _backfill_search fills them
    5: ["ALTER TABLE feeds ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1"],
    3: ["ALTER TABLE pages ADD COLUMN retry_at REAL", "ALTER TABLE pages ADD COLUMN deferred_since REAL",
        "ALTER TABLE pages ADD COLUMN pending BLOB"],
    6: [SITE_CLEANUP],
    7: ["ALTER TABLE verdicts ADD COLUMN decided TEXT"],
    8: [SITE_LABELS],
    # the corpus page lists articles by the day they were published (fetched when unknown)
    9: ["ALTER TABLE articles ADD COLUMN day TEXT",
        "UPDATE articles SET day = CASE WHEN published GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' "
        "THEN substr(published, 1, 10) ELSE date(fetched, 'unixepoch') END"],
    10: [],  # feed_history comes from SCHEMA
    11: [],  # candidates comes from SCHEMA
    12: [],  # backfill_sites comes from SCHEMA
}
