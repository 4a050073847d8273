"""A news site with a history, for backfill tests: robots.txt, a sitemap index (a gzipped child, a
plain one, a news sitemap), a WordPress-style paged feed, on-topic articles (the fixture texts about
North Korean gold mining) among many unrelated ones (made up from word lists: each text its own, so
none is a near copy of another), with related-story links between the on-topic ones."""

from __future__ import annotations

import html
import random
from dataclasses import dataclass, field

from tests.support.web import Host, article_text, gzipped, rss

ON = ["on_hyesan_gold", "on_forced_labour_report", "on_sanctions_gold", "on_mine_collapse", "on_smuggling_arrests"]
_SUBJECTS = {
    "football": "match league striker goal coach stadium season fans penalty referee midfielder transfer cup",
    "cooking": "recipe oven flour butter sauce garlic simmer dough bake onion pepper dinner kitchen chef",
    "phones": "smartphone battery screen camera app update processor charger android display chip launch",
    "weather": "rain forecast storm temperatures wind showers sunshine cloud frost humidity warning coast",
    "gardening": "roses soil compost seeds pruning lawn tulips watering shrubs greenhouse spring bulbs",
    "cinema": "film director actress premiere screenplay box office sequel festival trailer studio cast",
}
_COMMON = "the a of to and in on for with that was said is as by at from it this have has will their after more"


def unrelated(rng: random.Random, subject: str, n: int) -> tuple[str, str]:
    words, common = _SUBJECTS[subject].split(), _COMMON.split()
    title = " ".join(w.capitalize() for w in rng.sample(words, 4))
    paras = []
    for _ in range(4):
        sents = []
        for _ in range(4):
            ws = [rng.choice(words if rng.random() < 0.45 else common) for _ in range(rng.randint(9, 16))]
            sents.append(" ".join(ws).capitalize() + ".")
        paras.append(" ".join(sents))
    return f"{title} {n}", "\n\n".join(paras)


def page(title: str, body: str, date: str, related: list[tuple[str, str]] = ()) -> str:
    paras = "\n".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n") if p.strip())
    rel = "".join(f'<li><a href="{u}">{html.escape(t)}</a></li>' for u, t in related)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta property="og:site_name" content="Archive News"><meta property="article:published_time" content="{date}T08:00:00Z">
</head><body><header><nav><a href="/">Home</a> <a href="/world">World</a></nav></header>
<main><article><h1>{html.escape(title)}</h1>{paras}</article>
<aside class="related"><h3>Related stories</h3><ul>{rel}</ul></aside></main>
<footer><a href="/privacy">Privacy policy</a></footer></body></html>"""


@dataclass
class ArchiveSite:
    host: Host
    on_topic: list[str] = field(default_factory=list)  # article paths
    off_topic: list[str] = field(default_factory=list)
    blocked: str = ""  # an on-topic article under a path robots.txt disallows
    feed: str = ""

    def article_paths(self) -> set[str]:
        return set(self.on_topic) | set(self.off_topic) | {self.blocked}

    def article_hits(self) -> list[str]:
        """Article paths requested, in order, each time it was."""
        paths = self.article_paths()
        return [r.path for r in self.host.requests if r.path in paths]


def build_archive_site(host: Host, n_off: int = 40, seed: int = 3) -> ArchiveSite:
    rng = random.Random(seed)
    site = ArchiveSite(host)
    base = host.base
    slugs = {"on_hyesan_gold": "/2025/04/02/hyesan-gold-mine-output-north-korea/",
             "on_forced_labour_report": "/2025/06/11/forced-labour-north-korean-gold-mines-report/",
             "on_sanctions_gold": "/2025/08/20/sanctions-north-korea-gold-exports/",
             "on_mine_collapse": "/news/9001",  # opaque: only the news sitemap's title says what it is
             "on_smuggling_arrests": "/?p=77"}  # opaque: only the paged feed's title says what it is
    texts = {n: article_text(n) for n in ON}
    for name, path in slugs.items():
        title, body = texts[name]
        related = [(p, texts[n][0]) for n, p in slugs.items() if n != name][:2]
        host.add(path, page(title, body, "2025-0" + str(3 + ON.index(name)) + "-15", related))
        site.on_topic.append(path)
    blocked_title, blocked_body = article_text("on_hyesan_gold")
    site.blocked = "/private/2025/09/01/gold-mine-workers-north-korea/"
    host.add(site.blocked, page(blocked_title + " (members)", blocked_body, "2025-09-01"))
    subjects = list(_SUBJECTS)
    dated: list[tuple[str, str, str]] = []  # (path, title, date)
    for i in range(n_off):
        title, body = unrelated(rng, subjects[i % len(subjects)], i)
        day = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"
        path = f"/{day.replace('-', '/')}/{'-'.join(title.lower().split())}/"
        host.add(path, page(title, body, day))
        site.off_topic.append(path)
        dated.append((path, title, day))
    host.add("/robots.txt", f"User-agent: *\nDisallow: /private/\nSitemap: {base}/sitemap_index.xml\n",
             content_type="text/plain")
    old = [p for p, _, d in dated if d < "2025-07"] + [slugs["on_hyesan_gold"], slugs["on_forced_labour_report"]]
    new = [p for p, _, d in dated if d >= "2025-07"] + [slugs["on_sanctions_gold"], site.blocked]
    urlset = '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{}' \
             "</urlset>"
    host.add("/sitemap-2025-1.xml.gz",
             gzipped(urlset.format("".join(f"<url><loc>{base}{p}</loc><lastmod>2025-06-01</lastmod></url>"
                                           for p in old)).encode()), content_type="application/gzip")
    host.add("/sitemap-2025-2.xml", urlset.format("".join(f"<url><loc>{base}{p}</loc></url>" for p in new)),
             content_type="application/xml")
    news = ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>'
            f"<loc>{base}/news/9001</loc><news:news><news:publication><news:name>Archive News</news:name>"
            "<news:language>en</news:language></news:publication>"
            "<news:publication_date>2025-07-15T08:00:00Z</news:publication_date>"
            f"<news:title>{html.escape(texts['on_mine_collapse'][0])}</news:title></news:news></url></urlset>")
    host.add("/news-sitemap.xml", news, content_type="application/xml")
    host.add("/sitemap_index.xml", '<?xml version="1.0" encoding="UTF-8"?><sitemapindex '
             'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<sitemap><loc>{base}/sitemap-2025-1.xml.gz</loc></sitemap>"
             f"<sitemap><loc>{base}/sitemap-2025-2.xml</loc></sitemap>"
             f"<sitemap><loc>{base}/news-sitemap.xml</loc></sitemap>"
             f"<sitemap><loc>{base}/sitemap_index.xml</loc></sitemap></sitemapindex>",  # lists itself
             content_type="application/xml")
    # the feed: its newest 3 entries, and a WordPress-style page 2 naming the opaque ?p=77 story
    newest = [{"title": t, "link": base + p, "guid": p, "date": "Mon, 01 Dec 2025 08:00:00 GMT"}
              for p, t, _ in dated[-3:]]
    site.feed = host.add("/feed/", rss("Archive News", newest), content_type="application/rss+xml")
    older = [{"title": texts["on_smuggling_arrests"][0], "link": base + "/?p=77", "guid": "p77",
              "date": "Mon, 01 Sep 2025 08:00:00 GMT"}] + \
            [{"title": t, "link": base + p, "guid": p, "date": "Mon, 01 Sep 2025 08:00:00 GMT"}
             for p, t, _ in dated[-8:-3]]
    host.routes["/feed/?paged=2"] = host.routes["/feed/"].__class__(
        body=rss("Archive News", older).encode(), headers={"Content-Type": "application/rss+xml"})
    return site
