"""Mutated feed bytes thrown at the feed step: entries or a recorded error, never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.sources.feeds import parse_feed
from tests.support.web import atom, rdf, rss

ITEMS = [{"title": "A & B <i>x</i>", "link": "http://e.org/a", "guid": "a", "date": "Fri, 20 Nov 2026 08:00:00 GMT"},
         {"title": "C", "link": "/rel", "guid": "c"}]
SEEDS = [rss("R", ITEMS).encode(), atom("A", ITEMS).encode(), rdf("D", ITEMS).encode()]
REALWORLD = Path(__file__).resolve().parents[4] / "shared" / "data" / "feeds" / "realworld" / "rss-parser"
if REALWORLD.exists():
    SEEDS += [p.read_bytes()[:20_000] for p in sorted(REALWORLD.glob("*.rss"))[:5]]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i:i + draw(st.integers(1, 200))]
        elif op == "insert":
            data[i:i] = draw(st.sampled_from([b"<", b">", b"&", b"]]>", b"<!--", b"\x00", b"\xff\xfe",
                                              b"<!ENTITY x 'y'>", b"&#xD800;", b"<item>", b"</channel>",
                                              "\u202e".encode()]))
        else:
            j = draw(st.integers(i, min(len(data), i + 500)))
            data[j:j] = data[i:j]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_feeds_never_raise(body):
    parsed = parse_feed(body, "http://127.0.0.1/feed.xml", "application/rss+xml")
    assert not (parsed.error and parsed.entries)  # an error means nothing usable came out
    assert parsed.error is None or (parsed.error.strip() and parsed.title == "")
    for e in parsed.entries:
        assert e.key and (e.link == "" or e.link.startswith(("http://", "https://")))
        assert all(c.isprintable() or c in "\n\t" for c in e.title)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(body):
    parsed = parse_feed(body, "http://127.0.0.1/feed.xml")
    assert not (parsed.error and parsed.entries)
    assert parsed.error is not None or parsed.entries or parsed.title or b"<" in body  # random bytes are no feed
    for e in parsed.entries:
        assert e.key and (e.link == "" or e.link.startswith(("http://", "https://")))
