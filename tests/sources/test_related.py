"""Related-story links (ingest.sources.related): the page's links to its own site's stories, with their
text, each once; navigation, other sites and wordless links left out."""

from __future__ import annotations

from ingest.sources.related import related_links


def test_related_story_links_of_an_article_page():
    page = """<html><body><header><nav><a href="/world/">World news and more</a></nav></header>
    <article><p>Text with <a href="/2025/01/hyesan-gold-mine">the Hyesan gold mine report</a>.</p>
    <aside class="related"><h3>Related</h3><ul>
    <li><a href="https://www.e.org/2024/11/unsan-miners-shifts#top">Unsan miners describe twelve-hour shifts</a></li>
    <li><a href="/2025/01/hyesan-gold-mine">Hyesan gold mine report, again</a></li>
    <li><a href="https://other.org/gold">Gold prices at a record high</a></li>
    <li><a href="/more">More</a></li><li><a href="javascript:void(0)">Share this story now</a></li>
    </ul></aside></article><footer><a href="/privacy">Our privacy policy explained</a></footer></body></html>"""
    links = related_links(page, "https://e.org/2025/02/this-story")
    assert links == [("https://e.org/2025/01/hyesan-gold-mine", "the Hyesan gold mine report"),
                     ("https://www.e.org/2024/11/unsan-miners-shifts", "Unsan miners describe twelve-hour shifts")]
    assert related_links(b"", "https://e.org/") == []
