"""What extraction keeps of a page (ingest.text.extract): the story's paragraphs, not the page's
furniture, and the site's own name, never its headline."""

from __future__ import annotations

import pytest

from ingest.text.extract import extract, is_furniture, site_name

FURNITURE = ["By Staff Reporter | Dec 3, 2026, 08:00 GMT", "By Jane Doe", "December 3, 2026",
             "Updated: 3 December 2026", "Dec 3, 2026 8:15 a.m. EST",
             "Sign up for our Morning Briefing newsletter to get the day's top stories in your inbox.",
             "We use cookies to improve your experience. Accept all cookies.", "Share this article", "Advertisement"]
STORY = ["The company said it would subscribe to the new share issue.", "By 2026 the mine will produce 3 tonnes.",
         "From 2019 to 2023 output doubled.", "By then the mine had closed.",
         "From Pyongyang, the view is different.", "Reuters",
         "Cookies were handed out to the miners, who said they had signed up for the night shift in December 2025."]


@pytest.mark.parametrize("line", FURNITURE)
def test_page_furniture_is_recognised(line):
    assert is_furniture(line)


@pytest.mark.parametrize("line", STORY)
def test_a_storys_own_sentences_are_not_furniture(line):
    assert not is_furniture(line)


def _page(title: str, head: str = "", body: str = "") -> bytes:
    paras = body or ("<p>Miners at a gold mine near Unsan work twelve-hour shifts, former workers said on Monday. "
                     "The ore is carried out by hand and sold through traders to China.</p>"
                     "<p>Labour at the mine includes prisoners and students sent for mobilisation, a report found, "
                     "and the mine's output has doubled since 2019 according to the traders.</p>")
    return (f"<html><head><title>{title}</title>{head}</head><body><article><h1>{title.split(' | ')[0]}</h1>"
            f"{paras}</article></body></html>").encode()


def test_the_site_is_the_name_the_page_declares_never_its_headline():
    declared = '<meta property="og:site_name" content="Gold Times">'
    assert site_name(_page("U.K. Reserves rise | Gold Times", declared), "U.K. Reserves rise") == "Gold Times"
    ld = '<script type="application/ld+json">{"@graph": [{"publisher": {"name": "Mining Wire"}}]}</script>'
    assert site_name(_page("S. African gold", ld), "S. African gold") == "Mining Wire"
    itself = '<meta property="og:site_name" content="N. Korea\'s gold mine collapse: a report">'
    assert site_name(_page("x", itself), "N. Korea's gold mine collapse: a report") == ""
    page = extract(_page("U.K. Reserves rise at Unsan gold mine | Gold Times"), "http://127.0.0.1:8080/a.html")
    assert page is not None and page.site == "127.0.0.1" and page.title == "U.K. Reserves rise at Unsan gold mine"


def test_a_byline_run_into_the_lead_and_furniture_paragraphs_are_left_out():
    body = ("<p>By Staff Reporter | Dec 3, 2026, 08:00 GMT</p><p>Miners at a gold mine near Unsan work twelve-hour "
            "shifts, former workers said. The ore is carried out by hand and sold through traders to China.</p>"
            "<p>Sign up for our Morning Briefing newsletter to get the day's top stories in your inbox.</p>")
    page = extract(_page("Unsan miners", body=body), "http://e.org/a")
    assert page is not None and page.text.startswith("Miners at a gold mine")
    assert "newsletter" not in page.text and "Staff Reporter" not in page.text
