"""Digests: what was collected in a period, and the health of the feeds.

``build`` reads the store only; the renderers turn a ``Digest`` into Markdown
(clean on GitHub), self-contained HTML (inline CSS, everything escaped,
readable on a phone), Atom (feedgen) or JSON. ``scheduled`` is what the
service's cron job and a bare ``ingest digest`` do: cover the time since the
previous digest (so no item appears twice unless its text was updated),
write ``digests/YYYY-MM-DDTHHMM.md`` and ``.html``, refresh the rolling
``digests/feed.xml``, and record the digest.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ingest.judge.quality import ModelReport
from ingest.run.feedback import ReviewItem, model_report
from ingest.sources.urls import display, redact_text, site_label, site_of
from ingest.store import SqlStore
from ingest.timefmt import iso as _iso

if TYPE_CHECKING:
    from ingest.config import Config
    from ingest.out.standing import Standing

ROLLING_ITEMS = 100  # entries in digests/feed.xml
EXCERPT_CHARS = 420
REVIEW_ITEMS = 5  # "Help it learn": how many pages to ask about
_SENTENCE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)]))\s+(?=[\"'“‘(]?[A-Z0-9])")


@dataclass(frozen=True)
class Source:
    url: str
    site: str
    feed: str | None
    first_seen: str | None


@dataclass(frozen=True)
class Backfilled:
    """Where a backfilled article came from: the site's archive, not its feed's newest entries."""

    site: str
    via: str  # sitemap, news-sitemap, feed-page, archive, link
    found_in: str | None  # the sitemap, feed page or archive index that listed it
    published: str | None


@dataclass(frozen=True)
class Item:
    id: int
    title: str
    url: str
    site: str
    published: str | None
    fetched: str
    score: float  # under the current model (ingest.out.standing), or the score it was kept at once it left the window
    terms: list[str]
    excerpt: str
    path: str
    updated: bool  # in the digest because its text changed in place
    other_sources: list[Source]
    decided_score: float | None = None  # the score it was kept at, when the current model scores it otherwise
    threshold: float | None = None  # the threshold that applies to it under the same model
    backfill: Backfilled | None = None  # set when the backfill found it in the site's history


@dataclass(frozen=True)
class Health:
    url: str
    name: str
    state: str
    reason: str
    since: str | None


@dataclass(frozen=True)
class Digest:
    created: str
    since: str
    until: str
    items: list[Item]
    health: list[Health]
    review: list[ReviewItem] = field(default_factory=list)  # "Help it learn": what to judge next
    model: ModelReport | None = None  # the model's state, and a warning when it cannot separate the topic
    histogram: str = ""  # the window's scores drawn as SVG (ingest.out.histogram), for the HTML digest
    archive: list[Item] = field(default_factory=list)  # backfilled articles, apart from the new stories


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first two or three sentences, at most ``limit`` characters."""
    flat = " ".join(text.split())
    out = ""
    for i, sentence in enumerate(_SENTENCE.split(flat)):
        if i >= 3 or (out and len(out) + len(sentence) + 1 > limit):
            break
        out = f"{out} {sentence}".strip()
    if len(out) > limit:
        out = out[: limit - 1].rsplit(" ", 1)[0] + "…"
    return out


@dataclass(frozen=True)
class Teaching:
    """What a digest shows of the model now: the review queue, the histogram, the model's state, and
    each recent article's score and threshold under the current model (ingest.out.standing: one score
    per article on every screen, the review's included)."""

    review: list[ReviewItem] = field(default_factory=list)
    histogram: str = ""
    current: dict[int, tuple[float, float]] = field(default_factory=dict)  # article id -> (score, threshold)
    model: ModelReport | None = None  # the model these scores come from


def teaching(store: SqlStore, now: Standing, limit: int = 5) -> Teaching:
    """The digest's view of the model from the window's scores (learned in a worker, or here)."""
    from ingest.out.histogram import svg
    from ingest.run.feedback import pick_review

    ids = now.window.ids
    return Teaching(pick_review(store, ids, now.scored, limit, now.window.own), svg(now.picture) if ids else "",
                    now.by_article(), now.report(model_report(store)) if ids else None)


def teach_now(store: SqlStore, seeds: Sequence[str], config: Config, limit: int = 5) -> Teaching:
    """The same, the model learned in this process (`ingest digest`)."""
    from ingest.out.standing import standing

    return teaching(store, standing(store, seeds, config), limit)


def build(store: SqlStore, since: float, until: float, now: float, review: Sequence[ReviewItem] | Teaching = (),
          backfill: bool = True) -> Digest:
    """The digest of the articles stored in [since, until). Backfilled articles go to ``archive``, apart
    from the new stories (a first backfill stores years of history in one day), or are left out with
    ``backfill=False``."""
    view = review if isinstance(review, Teaching) else Teaching(list(review))
    items = []
    rows = store.articles_between(since, until)
    origins = store.backfill_origins([r["id"] for r in rows])
    for row in rows:
        origin = origins.get(row["id"])
        if origin is not None and not backfill:
            continue
        body = store.article_body(row)
        text = body[1] if body is not None else ""
        # every URL as it may be shown: no credentials, punycode host, nothing that breaks out of markup
        sources = [Source(display(s["url"]), site_label(s["url"]), display(s["feed_url"]) if s["feed_url"] else None,
                          _iso(s["first_seen"])) for s in store.article_sources(row["id"])]
        primary = display(row["url"])
        others = [s for s in sources if s.url != primary]
        updated = bool(row["updated"]) and row["fetched"] <= since
        found = view.current.get(row["id"])
        now_score, now_th = found if found is not None else (None, row["threshold"])
        moved = now_score is not None and round(now_score, 3) != round(row["score"], 3)
        items.append(Item(
            id=row["id"], title=row["title"], url=primary, site=site_of(row["site"], row["url"]),
            published=row["published"], fetched=_iso(row["fetched"]) or "",
            score=round(now_score, 6) if now_score is not None else row["score"],
            terms=json.loads(row["terms"])[:6], excerpt=excerpt(text), path=row["path"], updated=updated,
            other_sources=list({s.url: s for s in others}.values()), decided_score=row["score"] if moved else None,
            threshold=round(now_th, 6) if now_th is not None else None,
            backfill=Backfilled(site_of(row["site"], row["url"]), origin["source"],
                                display(origin["found_in"]) if origin["found_in"] else None,
                                row["published"] or origin["date"]) if origin is not None else None))
    items.sort(key=lambda it: (-it.score, it.id))
    archive = [it for it in items if it.backfill is not None]
    items = [it for it in items if it.backfill is None]
    health = []
    for f in store.feeds():
        moved = f.url != f.config_url
        if f.state in ("error", "failing", "disabled") or moved:
            if f.state == "error":
                state, reason = "backing off", f"{f.consecutive_errors} error(s), next try {_iso(f.next_poll)}: " \
                                              f"{redact_text(f.last_error or '')}"
            elif f.state in ("failing", "disabled"):
                state, reason = f.state, redact_text(f.state_reason)
            else:
                state, reason = "moved", f"moved permanently to {display(f.url)}"
            health.append(Health(display(f.config_url), f.name or f.title, state, reason, _iso(f.errors_since)))
    review = [dataclasses.replace(r, url=display(r.url)) for r in view.review]
    return Digest(_iso(now) or "", _iso(since) or "", _iso(until) or "", items, health, review,
                  view.model or model_report(store), view.histogram, archive)


def archive_note(b: Backfilled) -> str:
    """The mark a backfilled article carries on every screen (plain text: each renderer escapes it)."""
    when = f", published {b.published[:10]}" if b.published else ""
    return f"from the archive of {b.site}{when}"


def model_lines(m: ModelReport) -> list[str]:
    """The model's state in sentences (plain text: each renderer escapes it)."""
    if m.model == "none":
        return ["No model learned yet."]
    out = [f"Learned from {m.pages} recent pages ({m.model}), threshold {m.threshold:.3f}; your verdicts: "
           f"{m.relevant} relevant, {m.irrelevant} not relevant."]
    if m.relevant or m.irrelevant:
        out.append(f"Measured on the pages you judged (mostly borderline, so pessimistic): precision "
                   f"{m.precision_text()}, recall {m.recall_text()}.")
    out += [w[0].upper() + w[1:] + "." for w in m.warnings]
    return out


# -- renderers -------------------------------------------------------------------

def _md(text: str) -> str:
    """Escape Markdown control characters in feed/page text."""
    return re.sub(r"([\\`*_\[\]#|<>~])", r"\\\1", " ".join(str(text).split()))


def _safe_url(url: str) -> str | None:
    return url if urlsplit(url).scheme in ("http", "https") else None


def render_markdown(d: Digest) -> str:
    lines = [f"# seed-ingest digest, {d.since[:16].replace('T', ' ')} to {d.until[:16].replace('T', ' ')} UTC", ""]
    if not d.items:
        lines += ["Nothing new matched the seeds in this period.", ""]
    else:
        lines += [f"{len(d.items)} new {'story' if len(d.items) == 1 else 'stories'}, most relevant first.", ""]
    if d.archive:
        lines += [f"{len(d.archive)} more from the sites' archives, listed apart below.", ""]
    for it in d.items:
        url = _safe_url(it.url)
        title = f"[{_md(it.title)}](<{url}>)" if url else _md(it.title)
        flag = " *(updated)*" if it.updated else ""
        lines.append(f"## {title}{flag}")
        lines.append("")
        when = it.published or it.fetched[:10]
        earlier = f" (kept at {it.decided_score:.3f} under an earlier model)" if it.decided_score is not None else ""
        lines.append(f"**{_md(it.site)}** · {_md(when)} · relevance {it.score:.3f}{earlier} · "
                     f"matched on: {_md(', '.join(it.terms))}")
        lines.append("")
        if it.excerpt:
            lines.append(f"> {_md(it.excerpt)}")
            lines.append("")
        if it.other_sources:
            links = ", ".join(f"[{_md(s.site)}](<{s.url}>)" for s in it.other_sources if _safe_url(s.url))
            lines.append(f"Also reported by: {links}")
            lines.append("")
    if d.archive:
        lines += [f"## From the sites' archives ({len(d.archive)})", "",
                  "Found by `ingest backfill` in the history of the sites you follow, not new this period.", ""]
        for it in d.archive:
            url = _safe_url(it.url)
            title = f"[{_md(it.title)}](<{url}>)" if url else _md(it.title)
            assert it.backfill is not None
            lines.append(f"- {title}: {_md(archive_note(it.backfill))} · relevance {it.score:.3f} · "
                         f"matched on: {_md(', '.join(it.terms))}")
        lines.append("")
    lines.append("## Sources")
    lines.append("")
    if not d.health:
        lines.append("All feeds are healthy.")
    for h in d.health:
        lines.append(f"- **{h.state}**: {_md(h.name or h.url)} (<{h.url}>): {_md(h.reason)}")
    lines.append("")
    if d.model is not None:
        lines += ["## The model", ""] + [_md(t) for t in model_lines(d.model)] + [""]
    if d.review:
        lines += ["## Help it learn", "", "The model is least sure about these. A verdict on each teaches it "
                  "most: `ingest mark ID --relevant` or `ingest mark ID --irrelevant`.", ""]
        for r in d.review:
            url = _safe_url(r.url)
            title = f"[{_md(r.title or r.url)}](<{url}>)" if url else _md(r.title or r.url)
            lines.append(f"- `{r.id}` {title}: {_md(r.site)} · score {r.score:.3f} vs threshold "
                         f"{r.threshold:.3f} · {'kept' if r.kept else 'not kept'}")
        lines.append("")
    return "\n".join(lines)


_CSS = """
body{font:16px/1.5 -apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f6f6f4;color:#222}
main{max-width:42rem;margin:0 auto;padding:1rem}
h1{font-size:1.3rem}article{background:#fff;border-radius:8px;padding:.8rem 1rem;margin:0 0 1rem;
box-shadow:0 1px 2px rgba(0,0,0,.08)}article h2{font-size:1.1rem;margin:.2rem 0}
a{color:#0b5cad;text-decoration:none}a:hover{text-decoration:underline}
.meta{color:#666;font-size:.85rem}.excerpt{margin:.5rem 0}.terms{color:#555;font-size:.85rem}
.also{font-size:.85rem;color:#555}.upd{background:#fde68a;border-radius:4px;padding:0 .3rem;font-size:.75rem}
.health li{margin:.3rem 0}.state{font-weight:600}svg.histogram{display:block;max-width:100%;height:auto}
"""


def render_html(d: Digest) -> str:
    """The self-contained HTML digest, on the web view's Jinja2 templates (autoescaped)."""
    from markupsafe import Markup

    from ingest.out.render import environment

    return environment().get_template("digest.html").render(d=d, css=Markup(_CSS), histogram=Markup(d.histogram),
                                                            model=model_lines(d.model) if d.model else [],
                                                            archive_note=archive_note)


def render_atom(items: list[Item], title: str = "seed-ingest", feed_id: str = "urn:seed-ingest:digest") -> bytes:
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.id(feed_id)
    fg.title(title)
    fg.link(href="urn:seed-ingest", rel="self")
    fg.updated(datetime.now(UTC))
    for it in reversed(items):  # feedgen prepends: the first item ends up first
        fe = fg.add_entry()
        fe.id(f"urn:seed-ingest:article:{it.id}:{it.fetched}")
        fe.title(it.title)
        if _safe_url(it.url):
            fe.link(href=it.url)
        fe.updated(datetime.fromisoformat(it.fetched))
        others = "; also reported by " + ", ".join(s.site for s in it.other_sources) if it.other_sources else ""
        mark = f" ({archive_note(it.backfill)})" if it.backfill is not None else ""
        fe.summary(f"{it.site}{mark}: {it.excerpt} (relevance {it.score:.3f}; "
                   f"matched on {', '.join(it.terms)}{others})")
    return fg.atom_str(pretty=True)


def render_json(d: Digest) -> str:
    return json.dumps(asdict(d), ensure_ascii=False, indent=1)


def render(d: Digest, fmt: str) -> str:
    if fmt == "markdown":
        return render_markdown(d)
    if fmt == "html":
        return render_html(d)
    if fmt == "atom":
        return render_atom(d.items + d.archive, f"seed-ingest digest {d.until[:10]}").decode("utf-8")
    return render_json(d)


def scheduled(store: SqlStore, now: float, default_period: float = 86400.0,
              review: Sequence[ReviewItem] | Teaching = (), backfill: bool = True) -> tuple[Digest, list[Path]]:
    """The next digest: since the previous one, written to digests/, recorded."""
    since = store.last_digest_until() or now - default_period
    d = build(store, since, now, now, review, backfill)
    folder = store.root / "digests"
    folder.mkdir(exist_ok=True)
    stem = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H%M")
    paths = [folder / f"{stem}.md", folder / f"{stem}.html"]
    _atomic_write(paths[0], render_markdown(d).encode("utf-8"))
    _atomic_write(paths[1], render_html(d).encode("utf-8"))
    rolling = _rolling_items(store, now)
    _atomic_write(folder / "feed.xml", render_atom(rolling, "seed-ingest: new stories"))
    store.record_digest(since, now, len(d.items), str(paths[0].relative_to(store.root)))
    return d, paths + [folder / "feed.xml"]


def _rolling_items(store: SqlStore, now: float) -> list[Item]:
    """The newest ROLLING_ITEMS articles, newest first."""
    since = store.rolling_since(ROLLING_ITEMS)
    if since is None:
        return []
    d = build(store, since, now, now)
    return sorted(d.items + d.archive, key=lambda it: it.fetched, reverse=True)[:ROLLING_ITEMS]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(data)
    tmp.replace(path)
