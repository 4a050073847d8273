"""One article per story: syndicated and edited copies merge, different stories do not."""

from __future__ import annotations

import sqlite3

from ingest.text.fingerprint import signature, similarity
from tests.conftest import run_cli, write_config
from tests.support.web import article_page, article_text, atom, rss


def _feed(host, name: str, items: list[dict], kind=rss) -> str:
    return host.add(f"/{name}.xml", kind(name, items), content_type="application/rss+xml")


def test_signature_similarity_separates_copies_from_other_stories():
    a = article_text("on_hyesan_gold")[1]
    b = article_text("on_mine_collapse")[1]
    edited = "By a staff writer\n\n" + a.replace("this week", "on Tuesday") + "\n\nCopyright 2026. All rights reserved."
    assert similarity(signature(a), signature(edited)) >= 0.5
    assert similarity(signature(a), signature(b)) < 0.2  # same subject, different story
    assert signature("too short to compare") is None


def test_signatures_are_datasketchs_affine32_minhash_and_never_import_it():
    """Our MinHash is datasketch 2's default scheme written out: signatures already in a store stay
    comparable, and the poll process does not import datasketch (nor scipy through it)."""
    import random
    import subprocess
    import sys

    import numpy as np
    import pytest

    datasketch = pytest.importorskip("datasketch", minversion="2.0")
    from ingest.text.fingerprint import MIN_WORDS, NUM_PERM, shingles

    rng = random.Random(7)
    words = [f"w{i}" for i in range(400)] + ["Gold", "mine", "Hyesan", "ünïcode", "金"]
    texts = [article_text("on_hyesan_gold")[1]] + [
        "\n\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(1, 120))) for _ in range(rng.randint(1, 4)))
        for _ in range(150)]
    compared = 0
    for text in texts:
        ours = signature(text)
        if ours is None:
            continue
        m = datasketch.MinHash(num_perm=NUM_PERM, seed=1, scheme="affine32")
        m.update_batch(list(shingles(text)))
        assert np.frombuffer(ours, "<u4").tolist() == m.hashvalues.tolist()
        compared += 1
    assert compared > 100 and signature(" ".join(["word"] * (MIN_WORDS - 1))) is None
    code = ("import sys; from ingest.text.fingerprint import signature; signature('a b c d e f g h i j k l m n');"
            "print(sorted({'datasketch', 'scipy'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_syndicated_copies_on_three_hosts_become_one_article(tmp_path, seeds_dir, web):
    title, body = article_text("on_sanctions_gold")
    feeds = []
    for n, extra in [(2, ""), (3, "\n\nThis report was first published by a partner news agency."),
                     (4, "\n\nFollow us for more news from the Korean peninsula.")]:
        h = web.host(n)
        page = h.add("/story.html", article_page(title if n != 4 else "UN experts: gold smuggled to China",
                                                 body + extra, site=f"Site {n}"))
        feeds.append(_feed(h, f"f{n}", [{"title": title, "link": page, "guid": f"s{n}"}]))
    cfg = write_config(tmp_path, feeds)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 1 and s["duplicates"] == 2
    assert len(list((tmp_path / "store" / "corpus").glob("*.txt"))) == 1
    (art,) = run_cli("--config", str(cfg), "export").jsonl()
    assert sorted(src["url"] for src in art["sources"]) == sorted(web.host(n).url("/story.html") for n in (2, 3, 4))
    assert sorted(art["feeds"]) == sorted(feeds)


def test_different_stories_on_the_same_subject_stay_apart(tmp_path, seeds_dir, web):
    h = web.host(2)
    items = []
    for name in ("on_hyesan_gold", "on_smuggling_arrests", "on_mine_collapse"):
        title, body = article_text(name)
        items.append({"title": title, "link": h.add(f"/{name}.html", article_page(title, body)), "guid": name})
    cfg = write_config(tmp_path, [_feed(h, "f", items)])
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 3 and s["duplicates"] == 0


def test_guid_change_does_not_duplicate(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/story.html", article_page(title, body))
    feed = _feed(h, "f", [{"title": title, "link": page, "guid": "old-guid"}])
    cfg = write_config(tmp_path, [feed])
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 1
    _feed(h, "f", [{"title": title, "link": page, "guid": "new-guid"}])
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["entries_new"] == 1 and s["pages_fetched"] == 0 and s["kept"] == 0
    assert len(run_cli("--config", str(cfg), "export").jsonl()) == 1


def test_updated_article_is_updated_in_place(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/story.html", article_page(title, body))
    item = {"title": title, "link": page, "guid": "g1", "iso": "2026-11-20T08:00:00Z"}
    h.add("/feed.xml", atom("F", [item]), content_type="application/atom+xml")
    cfg = write_config(tmp_path, [h.url("/feed.xml")])
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 1
    corrected = body + "\n\nCorrection: an earlier version of this article misstated the size of the new quota."
    h.add("/story.html", article_page(title, corrected))
    h.add("/feed.xml", atom("F", [{**item, "iso": "2026-11-21T09:30:00Z"}]), content_type="application/atom+xml")
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["updated"] == 1 and s["kept"] == 0
    files = list((tmp_path / "store" / "corpus").glob("*.txt"))
    assert len(files) == 1 and "Correction: an earlier version" in files[0].read_text(encoding="utf-8")
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    assert db.execute("SELECT revisions, updated IS NOT NULL FROM articles").fetchone() == (1, 1)
    # the same updated date again: nothing is fetched
    before = len(h.hits("/story.html"))
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert len(h.hits("/story.html")) == before and s["updated"] == 0


def test_feed_stamping_every_entry_as_updated_is_not_refetched(tmp_path, seeds_dir, web):
    h = web.host(2)
    items = []
    for i, name in enumerate(["on_hyesan_gold", "on_smuggling_arrests", "on_mine_collapse", "off_football",
                              "off_recipe", "off_weather", "off_smartphone", "on_sanctions_gold"]):
        title, body = article_text(name)
        items.append({"title": title, "link": h.add(f"/{i}.html", article_page(title, body)), "guid": f"g{i}"})
    h.add("/feed.xml", atom("F", [{**it, "iso": "2026-11-20T08:00:00Z"} for it in items]),
          content_type="application/atom+xml")
    cfg = write_config(tmp_path, [h.url("/feed.xml")])
    run_cli("--config", str(cfg), "poll")
    pages_before = sum(len(h.hits(f"/{i}.html")) for i in range(8))
    # the next fetch stamps every entry with the time of the request
    h.add("/feed.xml", atom("F", [{**it, "iso": "2026-11-26T10:00:00Z"} for it in items]),
          content_type="application/atom+xml")
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert sum(len(h.hits(f"/{i}.html")) for i in range(8)) == pages_before and s["updated"] == 0


WIRE = ["on_hyesan_gold", "on_forced_labour_report", "on_sanctions_gold", "on_mine_collapse", "on_smuggling_arrests"]
CLOSING = ("Officials at the ministry could not be reached for comment late on Tuesday evening. Partner Daily "
           "carries this report under an agreement with the wire service; our own correspondents in Seoul and "
           "Dandong contributed background, and readers with information about conditions in the region can "
           "reach the newsroom through the contact page of our website at any time of day.")
LEAD = ("SEOUL (Yonhap) - In a development closely followed by analysts, diplomats and aid workers across the "
        "region, officials and independent researchers on Tuesday described in unusual detail what they said is "
        "happening on the ground, citing sources inside the country who spoke on condition of anonymity because "
        "of the risks involved in talking to foreign media.")


def _wire(name: str) -> tuple[str, list[str]]:
    """A short wire story (three paragraphs) from a fixture article."""
    title, body = article_text(name)
    return title, [p for p in body.split("\n\n") if p.strip()][:3]


def _syndicated(i: int, title: str, paras: list[str]) -> tuple[str, list[str]]:
    """As a second site runs it: the headline edited, and the lead rewritten or the last paragraph its own."""
    title = ["UPDATE 1-" + title, title + " - report", title.upper()][i % 3]
    paras = list(paras)
    if i % 2:
        paras[-1] = CLOSING
    else:
        paras[0] = LEAD
    return title, paras


def test_same_story_knows_a_syndicated_copy_with_an_end_changed():
    from ingest.judge.dedup import same_story

    for i, name in enumerate(WIRE):
        title, paras = _wire(name)
        _, copy = _syndicated(i, title, paras)
        assert same_story("\n\n".join(paras), "\n\n".join(copy)), name
        # headline and byline glued into the first paragraph by extraction, and the last one changed
        both = [f"{title.upper()} By Staff Reporter, 2026-11-20 " + paras[0], paras[1], CLOSING]
        assert same_story("\n\n".join(paras), "\n\n".join(both)), name
        # the wire's sign-off, a line of its own, dropped along with the changed closing
        assert same_story("\n\n".join([*paras, "Reuter"]), "\n\n".join([*paras[:-1], CLOSING])), name
    # two stories that share a background paragraph stay apart
    a, b = _wire("on_hyesan_gold")[1], _wire("on_mine_collapse")[1]
    background = _wire("on_sanctions_gold")[1][1]
    assert not same_story("\n\n".join([a[0], background, a[2]]), "\n\n".join([b[0], background, b[2]]))
    # a templated report: the same boilerplate, other figures in the lead
    boiler = ("The bond is available in denominations of one mln yen and will be listed in Luxembourg. Payment "
              "date is the issue date.\n\nFees comprise 1-1/4 pct selling concession and 5/8 pct for management "
              "and underwriting combined, the lead manager said in its statement.")
    one = "Union Bank of Finland is issuing a 10 billion yen eurobond due March 30, 1992 paying five pct and " \
          "priced at 102-3/8 pct, lead manager LTCB International Ltd said.\n\n" + boiler
    two = "Toyota Motor Credit Corp is issuing a 23 billion yen eurobond due April 10, 1992 paying 4-1/2 pct " \
          "and priced at 101-1/2 pct, lead manager Nomura International Ltd said.\n\n" + boiler
    assert not same_story(one, two)


def test_syndicated_wire_stories_are_stored_once(tmp_path, seeds_dir, web):
    """Originals on one host, copies on another under other URLs (headline edited, lead rewritten or last
    paragraph replaced, some declaring rel=canonical to the original): one article per story."""
    wire, partner = web.host(2), web.host(3)
    originals, copies = [], []
    for i, name in enumerate(WIRE):
        title, paras = _wire(name)
        url = wire.add(f"/{name}.html", article_page(title, "\n\n".join(paras), site="Wire"))
        originals.append({"title": title, "link": url, "guid": name})
        t2, p2 = _syndicated(i, title, paras)
        page = article_page(t2, "\n\n".join(p2), site="Partner Daily", canonical=url if i % 2 else None)
        copies.append({"title": t2, "link": partner.add(f"/news/{i}.html", page), "guid": f"p{i}"})
    cfg = write_config(tmp_path, [_feed(wire, "wire", originals), _feed(partner, "partner", copies)],
                       "[relevance]\nthreshold = 0.01\n")
    assert run_cli("--config", str(cfg), "poll").code == 0
    arts = run_cli("--config", str(cfg), "export").jsonl()
    assert len(arts) == len(WIRE), sorted(a["title"] for a in arts)
    assert all(len(a["sources"]) == 2 for a in arts)


SHORT_STORIES = [
    ("Gold plant opens near Hyesan",
     "Pyongyang said on Tuesday it had opened a new gold processing plant near Hyesan, state media reported. "
     "The plant will refine ore from three mines in Ryanggang province, the agency said, without giving output."),
    ("Miners moved to Unsan",
     "Hundreds of prisoners were moved to the Unsan gold mine in October, two former guards told reporters. "
     "They said the transfers followed a quota raised by the mining ministry after a poor first half."),
    ("Smuggled gold seized at border",
     "Chinese customs officers seized twelve kilograms of North Korean gold at Dandong last week, a trader said. "
     "The bars had been hidden in a lorry carrying seafood, he said, asking not to be named for his safety."),
    ("Ryanggang mine flooded",
     "Heavy rain flooded a gold mine shaft in Ryanggang province at the weekend, trapping workers for hours. "
     "Local sources said rescue crews pumped out the water but the pit remains closed to further digging."),
]
# what each site wraps a syndicated story in: furniture extraction lets through as paragraphs of their own
FURNITURE = [
    ('<p class="byline">By Staff Reporter | Dec 3, 2026, 08:00 GMT</p>', ""),
    ("", "<p>Sign up for our Morning Briefing newsletter to get the day's top stories in your inbox.</p>"),
    ("<p>Updated: 3 December 2026</p>",
     '<div class="notice"><p>We use cookies to improve your experience on our site. Accept all cookies.</p></div>'),
]


def test_short_syndicated_stories_with_page_furniture_are_stored_once_and_clean(tmp_path, seeds_dir, web):
    """300-400-character wire stories run on three sites, each wrapping them in its own furniture (a
    byline and date line, a newsletter box, a cookie notice): one article per story, with every site as
    a source, and none of the furniture in the stored text (issue 34)."""
    import html

    feeds = []
    for s, (top, bottom) in enumerate(FURNITURE):
        host = web.host(20 + s)
        items = []
        for i, (title, body) in enumerate(SHORT_STORIES):
            page = article_page(title, body, site=f"Site {s}").replace(
                f"<p>{html.escape(body)}</p>", f"{top}<p>{html.escape(body)}</p>{bottom}")
            assert top in page and bottom in page
            items.append({"title": title, "link": host.add(f"/s/{i}.html", page), "guid": f"{s}-{i}"})
        feeds.append(_feed(host, f"site{s}", items))
    cfg = write_config(tmp_path, feeds, "[relevance]\nthreshold = 0.0\n")
    assert run_cli("--config", str(cfg), "poll").code == 0
    arts = run_cli("--config", str(cfg), "export").jsonl()
    assert len(arts) == len(SHORT_STORIES), sorted(a["title"] for a in arts)
    assert all(len({s["url"] for s in a["sources"]}) == 3 for a in arts), [a["sources"] for a in arts]
    for a in arts:
        for furniture in ("Staff Reporter", "newsletter", "cookies", "Updated:", "GMT"):
            assert furniture not in a["text"], (furniture, a["text"])


def test_same_story_sees_through_one_line_on_a_short_text_but_not_other_figures():
    """A 35-word story and its copy with a byline run into the lead and a sign-up line at the end: one
    story (neither Jaccard nor containment sees it); a templated report whose lead names other
    figures is another story."""
    from ingest.judge.dedup import same_story

    story = ("Pyongyang said on Tuesday it had opened a new gold processing plant near Hyesan, state media "
             "reported. The plant will refine ore from three mines in Ryanggang province, the agency said.")
    copy = ("Gold plant opens By Staff Reporter | Dec 3, 2026 " + story +
            "\n\nThis story first appeared in our morning bulletin for readers.")
    other = "Gold plant opens By Staff Reporter | Dec 3, 2026 " + story
    assert same_story(story + "\n\nRead the full report on our website today, free of charge.", other)
    assert same_story(story, copy)
    template = "Acme Mining said it would pay a dividend of {} cents a share on {} to holders of record on May 2."
    a = template.format(12, "June 1") + "\n\nThe company had paid the same dividend a year ago, it said."
    b = template.format(15, "July 9") + "\n\nThe company had paid the same dividend a year ago, it said."
    assert not same_story(a, b)
