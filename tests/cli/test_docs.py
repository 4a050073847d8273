"""The documentation: the config schema matches the reader and the settings, the generated pages
are current, the site builds strictly (no broken link, every page in the nav), the README stays
short."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ingest.config import ConfigError, load_config, parse_duration
from ingest.config.schema import KEYS, TABLES, Key, names

REPO = Path(__file__).resolve().parents[2]


def _value(key: Key, raw: object) -> object:
    """A schema default as the settings hold it."""
    if key.kind == "duration":
        return parse_duration(raw)  # type: ignore[arg-type]
    if isinstance(raw, list):
        return tuple(raw)
    if isinstance(raw, dict):
        return tuple(raw.items())
    if key.table == "relevance" and key.name == "threshold":
        return None  # "auto"
    if isinstance(raw, int) and not isinstance(raw, bool) and key.kind.startswith("number"):
        return float(raw)
    return raw


def _toml(value: str) -> object:
    return tomllib.loads(f"x = {value}")["x"]


def test_every_default_in_the_schema_is_the_one_an_empty_config_gets(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[feeds]]\nurl = "https://example.org/feed.xml"\n')
    config = load_config(cfg)
    checked = 0
    for key in KEYS:
        if key.name in ("password_file",) or (key.table, key.name) == ("feeds", "url"):
            continue
        section = config.feeds[0] if key.table == "feeds" else getattr(config, key.table)
        got = getattr(section, key.name)
        if key.table == "paths":
            assert got == tmp_path / _toml(key.default), key  # type: ignore[operator]
        else:
            want = None if key.default is None else _value(key, _toml(key.default))
            assert got == want, f"[{key.table}] {key.name}: schema says {key.default}, settings hold {got!r}"
        checked += 1
    assert checked == len(KEYS) - 2


def test_every_key_of_the_schema_is_read_and_no_other(tmp_path):
    """A config holding every declared key loads (so the reader reads each), and a key the schema
    does not declare is refused with the table's keys as suggestions (the reader's list is the schema)."""
    (tmp_path / "pw").write_text("correct horse\n")
    body = []
    for table in TABLES:
        if table == "feeds":
            continue
        body.append(f"[{table}]")
        for key in KEYS:
            if key.table == table:
                value = '"pw"' if key.name == "password_file" else key.example or key.default
                if key.name == "password" or (table == "web" and key.name == "listen"):
                    value = key.default
                body.append(f"{key.name} = {value}")
    body.append("[[feeds]]")
    body += [f"{k.name} = {k.example or k.default}" for k in KEYS if k.table == "feeds"]
    cfg = tmp_path / "config.toml"
    cfg.write_text("\n".join(body) + "\n")
    config = load_config(cfg)
    assert config.web.password == "correct horse" and config.feeds[0].threshold == 0.2
    for table in TABLES:
        if table == "feeds":
            continue
        cfg.write_text(f"[{table}]\nnot_a_key = 1\n")
        with pytest.raises(ConfigError, match=rf"unknown key \[{table}\.not_a_key\]; known keys: "
                                               + ", ".join(sorted(names(table)))):
            load_config(cfg)


def test_generated_pages_are_current():
    proc = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_site_builds_strictly(tmp_path):
    """mkdocs --strict: a broken link or anchor, or a page missing from the nav, fails the build (not with
    -q, which hides the warnings strict mode counts)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = tmp_path / "site"
    assert (site / "configuration.html").exists()
    # opened from files (no web server to turn a directory into its index.html): every link of every page's
    # navigation resolves to a file
    import re
    from urllib.parse import unquote, urlsplit

    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")  # 404.html: a server's page
    assert len(pages) > 10
    for page in pages:
        for href in re.findall(r'<a[^>]+href="([^"#]+)', page.read_text(encoding="utf-8")):
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("mailto:", "//")):
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{page.relative_to(site)} links {href}: no such file"
    # the checks are on: a page outside the nav and a broken link fail the build
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# x\n\n[gone](nowhere.md)\n")
    (docs / "stray.md").write_text("# stray\n")
    cfg = tmp_path / "mkdocs.yml"
    cfg.write_text((REPO / "mkdocs.yml").read_text().split("nav:")[0].replace("docs_dir: docs", f"docs_dir: {docs}")
                   + "nav:\n  - Home: index.md\n")
    bad = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(cfg), "-d",
                          str(tmp_path / "bad")], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "nowhere.md" in bad.stdout + bad.stderr


def test_the_readme_fits_in_a_sitting():
    assert len((REPO / "README.md").read_bytes()) <= 15_000


def test_the_changelog_starts_with_this_release(capsys):
    """Keep a Changelog: Unreleased on top, then the newest release, which is the version the package
    (and `ingest --version`) says."""
    import re

    from ingest import __version__
    from ingest.cli.main import build_parser

    heads = re.findall(r"^## \[([^\]]+)\]", (REPO / "CHANGELOG.md").read_text(encoding="utf-8"), re.MULTILINE)
    assert heads[0] == "Unreleased" and heads[1] == __version__
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out.strip() == f"seed-ingest {heads[1]}"


def test_every_module_the_docs_name_exists():
    """A path such as `ingest/judge/dedup.py` or `bench/dedup.py` in the README, ARCHITECTURE.md or a
    docs page names a file that exists (code moves; its documentation must follow)."""
    import re

    texts = [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md"))]
    missing = []
    for path in texts:
        if path.name == "changelog.md":
            continue  # history names files as they were
        for name in set(re.findall(r"\b((?:ingest|bench|tests|contrib)/[\w/]+\.(?:py|html|css|service))\b",
                                   path.read_text(encoding="utf-8"))):
            if not (REPO / name).exists():
                missing.append(f"{path.name}: {name}")
    assert missing == []
