"""The feed list in ``config.toml``: find a site's feed, add and remove feeds, OPML in and out.

``config.toml`` stays the one place of truth, and stays the user's file: it is
edited with tomlkit, so comments, order and layout survive, and written
atomically after the result has been loaded and validated like any config
(a failed edit changes nothing). The running service notices the change
(SIGHUP, or the file's modification time within seconds).

Finding a site's feeds from one of its pages is ingest.sources.discovery's job.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomlkit

from ingest.config import Config, ConfigError, FeedSettings, load_config
from ingest.sources.discovery import Discovery, Found
from ingest.sources.urls import display, normalize, scheme_reason


class FeedListError(Exception):
    """A feed-list operation that cannot be done; the message says why. Nothing was changed."""


# -- editing config.toml --------------------------------------------------------

def _load_doc(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FeedListError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # tomlkit's parse errors; load_config has already named the problem
        raise FeedListError(f"{path}: invalid TOML: {exc}") from None


def _save_doc(path: Path, doc: tomlkit.TOMLDocument) -> Config:
    """Validate the edited document as a config, then put it in place atomically."""
    text = tomlkit.dumps(doc)
    fd, name = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    tmp: Path | None = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        with contextlib.suppress(OSError):
            Path(name).chmod(path.stat().st_mode & 0o7777)
        try:
            config = load_config(name)
        except ConfigError as exc:
            raise FeedListError(f"{path}: the edit would make the config invalid, nothing changed: "
                                f"{str(exc).replace(name, str(path))}") from None
        Path(name).replace(path)
        tmp = None
        return config
    finally:
        if tmp is not None:
            tmp.unlink()


def _feeds_aot(doc: tomlkit.TOMLDocument) -> tomlkit.items.AoT:
    feeds = doc.get("feeds")
    if feeds is None:
        feeds = tomlkit.aot()
        doc.append("feeds", feeds)
    if not isinstance(feeds, tomlkit.items.AoT):
        raise FeedListError("config.toml: [feeds] is not a list of [[feeds]] tables; fix it by hand")
    return feeds


def _table(feed: FeedSettings) -> tomlkit.items.Table:
    t = tomlkit.table()
    t["url"] = feed.url
    if feed.name:
        t["name"] = feed.name
    if feed.category:
        t["category"] = feed.category
    return t


def same_feed(a: str, b: str) -> bool:
    """Whether a user's reference names a listed feed (a trailing slash does not matter here)."""
    return normalize(a).rstrip("/") == normalize(b).rstrip("/")


def _insert_tables(text: str, tables: str) -> str:
    """``text`` with ``tables`` (rendered ``[[feeds]]`` tables) placed right after the last
    ``[[feeds]]`` table, before the comments that introduce the next section; at the end when the
    file has no feed yet. tomlkit's own append would put them after those comments."""
    lines = text.splitlines(keepends=True)
    heads = [i for i, ln in enumerate(lines) if re.match(r"\s*\[\[\s*feeds\s*\]\]", ln)]
    if not heads:
        return text.rstrip("\n") + ("\n\n" if text.strip() else "") + tables
    nxt = next((k for k in range(heads[-1] + 1, len(lines)) if re.match(r"\s*\[", lines[k])), len(lines))
    k = nxt
    while k > heads[-1] + 1 and (not lines[k - 1].strip() or lines[k - 1].lstrip().startswith("#")):
        k -= 1
    before = "".join(lines[:k]).rstrip("\n")
    after = "".join(lines[k:]).lstrip("\n")
    return before + "\n\n" + tables + ("\n" + after if after else "")


@dataclass
class AddReport:
    """What `feeds add` did with each feed a URL led to."""

    discovery: Discovery
    added: list[Found] = field(default_factory=list)
    already: list[Found] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for f in self.added:
            out.append(f"added: {f.parsed.title or '(untitled)'}  {display(f.url)}  ({f.describe()})")
        for f in self.already:
            out.append(f"already followed: {display(f.url)}  ({f.describe()})")
        for t in self.discovery.failed:
            out.append(f"failed: {display(t.url)}: {t.answer}")
        return out


def add_found(path: Path, discovery: Discovery, known: tuple[FeedSettings, ...], name: str | None = None,
              category: str = "") -> AddReport:
    """Add every working feed of ``discovery`` not listed yet (one write of the config)."""
    report = AddReport(discovery)
    feeds = []
    for i, f in enumerate(discovery.feeds):
        title = " ".join((f.parsed.title or "").split())[:200]  # the feed's own title names it
        feeds.append(FeedSettings(url=f.url, name=(name if name and i == 0 else title), category=category))
    added, _ = add_feeds(path, feeds, known)
    urls = {normalize(a.url) for a in added}
    for f in discovery.feeds:
        (report.added if normalize(f.url) in urls else report.already).append(f)
    return report


def add_feeds(path: Path, new: list[FeedSettings], known: tuple[FeedSettings, ...]) -> tuple[list[FeedSettings],
                                                                                              list[FeedSettings]]:
    """Append ``new`` feeds to the config as ``[[feeds]]`` tables; returns (added, duplicates).
    A feed is a duplicate when its normalised URL is already listed (or listed earlier in ``new``)."""
    doc = _load_doc(path)
    seen = {normalize(f.url) for f in known}
    added, dupes = [], []
    for f in new:
        key = normalize(f.url)
        if key in seen:
            dupes.append(f)
            continue
        seen.add(key)
        added.append(f)
    if not added:
        return added, dupes
    rendered = tomlkit.dumps({"feeds": [_table(f) for f in added]})
    text = _insert_tables(tomlkit.dumps(doc), rendered)
    placed = tomlkit.parse(text)
    want = [str(t.get("url")) for t in doc.get("feeds", [])] + [f.url for f in added]
    if [str(t.get("url")) for t in placed.get("feeds", [])] != want:  # an unusual layout: let tomlkit place them
        placed = doc
        feeds = _feeds_aot(placed)
        for f in added:
            feeds.append(_table(f))
    _save_doc(path, placed)
    return added, dupes


def remove_feed(path: Path, ref: str, known: tuple[FeedSettings, ...]) -> FeedSettings:
    """Remove the feed whose URL (normalised) or name (case-insensitive) is ``ref``."""
    matches = [f for f in known if same_feed(f.url, ref) or (f.name and f.name.casefold() == ref.casefold())]
    if not matches:
        raise FeedListError(f"no feed with URL or name {ref!r} in {path}; `ingest feeds list` shows them")
    if len(matches) > 1:
        raise FeedListError(f"{ref!r} names {len(matches)} feeds: {', '.join(display(f.url) for f in matches)}; "
                            f"give the URL")
    doc = _load_doc(path)
    feeds = _feeds_aot(doc)
    target = matches[0]
    for i, table in enumerate(feeds):
        if str(table.get("url", "")).strip() == target.url:
            del feeds[i]
            break
    else:
        raise FeedListError(f"{path}: cannot find the [[feeds]] table of {display(target.url)}")
    if not len(feeds):
        del doc["feeds"]
    _save_doc(path, doc)
    return target


def set_enabled(path: Path, url: str, enabled: bool) -> None:
    """Pause (``enabled = false``) or resume a listed feed; its state and history stay in the store."""
    doc = _load_doc(path)
    for table in _feeds_aot(doc):
        if same_feed(str(table.get("url", "")).strip(), url):
            if enabled:
                table.pop("enabled", None)
            else:
                table["enabled"] = False
            _save_doc(path, doc)
            return
    raise FeedListError(f"{path}: no [[feeds]] table for {display(url)}")


# -- OPML -----------------------------------------------------------------------

@dataclass
class OpmlImport:
    feeds: list[FeedSettings] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (what the outline said, why not)


FEED_TYPES = {"rss", "atom", "feed", "rdf", "json", "jsonfeed"}  # outline type="…" of a subscription
FOLDER_TYPES = {"folder", "category", "group"}  # outline type="…" some readers give a folder
CATEGORY_SEP = " / "  # nests OPML folders in a category; a "/" inside a folder's own name stays in it


def read_opml(data: bytes, source: str) -> OpmlImport:
    """The feeds of an OPML subscription list, read as XML (never fetches anything).

    The declared encoding is honoured (lxml reads the bytes); a file that is not well-formed
    (truncated, say) is refused whole. A feed is an outline with ``xmlUrl`` (any case), or
    OPML 1.0's ``type="rss" url="…"``; an outline that looks like a feed (a feed type, an
    ``xmlUrl`` or ``htmlUrl`` attribute) but has no usable URL is listed as invalid. Outlines
    with children are folders: their names, joined with " / ", become the feed's category."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise FeedListError(f"{source}: not an OPML subscription list: not well-formed XML ({exc}); a truncated "
                            f"or damaged export? nothing imported") from None
    if not isinstance(root.tag, str) or etree.QName(root).localname.lower() != "opml":
        raise FeedListError(f"{source}: not an OPML subscription list (the document is <{root.tag}>, not <opml>); "
                            f"nothing imported")
    out = OpmlImport()

    def tag(el: Any) -> str:
        return etree.QName(el).localname.lower() if isinstance(el.tag, str) else ""

    def walk(el: Any, folders: tuple[str, ...]) -> None:
        for child in el:
            if tag(child) != "outline":
                continue
            attrs: dict[str, str] = {}  # by local name in lower case (readers differ: xmlUrl, xmlurl), first wins
            for key, value in child.attrib.items():
                if isinstance(key, str):
                    attrs.setdefault(etree.QName(key).localname.lower(), " ".join(str(value).split()))
            name = attrs.get("title") or attrs.get("text") or ""
            kind = attrs.get("type", "").lower()
            url = attrs.get("xmlurl") or (attrs.get("url", "") if kind in FEED_TYPES else "")
            outlines = [c for c in child if isinstance(c.tag, str)]
            looks_like_feed = bool(url) or kind in FEED_TYPES or "xmlurl" in attrs or bool(attrs.get("htmlurl"))
            if outlines and not url:
                walk(child, (*folders, name) if name else folders)
                continue
            if not looks_like_feed and kind in FOLDER_TYPES:
                continue  # an empty folder
            if not url:
                why = "no xmlUrl: the outline names no feed" if looks_like_feed else \
                    "no xmlUrl: an empty folder, or a feed whose URL the export left out"
                out.invalid.append((name or "(outline without a name)", why))
            elif scheme_reason(url) or not urlsplit(url).hostname:
                out.invalid.append((url, "not an http(s) URL with a host"))
            else:
                out.feeds.append(FeedSettings(url=url, name=name if name != url else "",
                                              category=CATEGORY_SEP.join(folders)))
            if outlines:  # a feed outline with children (rare): its children are read as well
                walk(child, folders)

    body = next((c for c in root if tag(c) == "body"), None)
    if body is not None:
        walk(body, ())
    return out


def write_opml(feeds: tuple[FeedSettings, ...], title: str = "seed-ingest feeds") -> str:
    """OPML 2.0: one outline per category (nested by " / "), feeds with text, title, type, xmlUrl."""
    import xml.etree.ElementTree as ET
    from email.utils import formatdate

    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = formatdate(usegmt=True)
    body = ET.SubElement(root, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}
    for f in feeds:
        path = tuple(p.strip() for p in f.category.split(CATEGORY_SEP) if p.strip())
        for i in range(1, len(path) + 1):
            if path[:i] not in folders:
                folders[path[:i]] = ET.SubElement(folders[path[:i - 1]], "outline", text=path[i - 1],
                                                  title=path[i - 1])
        name = f.name or f.url
        ET.SubElement(folders[path], "outline", type="rss", text=name, title=name, xmlUrl=f.url)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
