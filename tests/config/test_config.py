"""Config loading: defaults, and one clear message per mistake (exit 2)."""

from __future__ import annotations

import pytest

from ingest.config import ConfigError, load_config, parse_duration
from tests.conftest import run_cli


def _cfg(tmp_path, text: str):
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_and_relative_paths(tmp_path):
    c = load_config(_cfg(tmp_path, '[[feeds]]\nurl = "https://example.org/feed.xml"\n'))
    assert c.paths.seeds == tmp_path / "seeds" and c.paths.store == tmp_path / "store"
    assert c.fetch.timeout == 20 and c.fetch.max_bytes == 10_000_000 and c.fetch.per_host == 2
    assert c.fetch.allow_private_networks is False and c.fetch.user_agent.startswith("seed-ingest/")
    assert c.relevance.threshold is None
    assert c.schedule.poll_interval == 1800 and c.schedule.digest == "0 7 * * *"
    assert c.feeds[0].url == "https://example.org/feed.xml"


def test_env_var_names_the_config(tmp_path, monkeypatch):
    p = _cfg(tmp_path, '[relevance]\nthreshold = 0.25\n')
    monkeypatch.setenv("INGEST_CONFIG", str(p))
    assert load_config().relevance.threshold == 0.25


@pytest.mark.parametrize("text,needle", [
    ("[fetch\n", "invalid TOML"),
    ("[fetch]\ntimout = 5\n", "[fetch.timout]; did you mean 'timeout'"),
    ("[fetchh]\n", "unknown key [fetchh]; did you mean [fetch]"),
    ('[fetch]\ntimeout = "soon"\n', "[fetch.timeout] expected a duration"),
    ("[fetch]\nper_host = 0\n", "[fetch.per_host] expected an integer >= 1"),
    ('[fetch]\nconcurrency = "64"\n', "[fetch.concurrency] expected an integer >= 1"),
    ("[fetch]\nallow_private_networks = 1\n", "[fetch.allow_private_networks] expected true or false"),
    ('[relevance]\nthreshold = "high"\n', '[relevance.threshold] expected "auto" or a number'),
    ("[relevance]\nthreshold = 2\n", "[relevance.threshold]"),
    ('[schedule]\ndigest = "every morning"\n', "[schedule.digest] expected a 5-field cron expression"),
    ('[schedule]\npoll_interval = "5 parsecs"\n', "[schedule.poll_interval] expected a duration"),
    ('[[feeds]]\nname = "x"\n', "[feeds[0]] missing key url"),
    ('[[feeds]]\nurl = "ftp://example.org/f"\n', "[feeds[0].url] expected an http:// or https:// URL"),
    ('[[feeds]]\nurl = "https://e.org/f"\ncolour = 1\n', "unknown key [feeds[0].colour]"),
    ('[[feeds]]\nurl = "https://e.org/f"\n[[feeds]]\nurl = "https://e.org/f"\n', "listed twice"),
    ('feeds = "https://e.org/f"\n', "[feeds] expected a list"),
    ('[web]\nallowed_hosts = ["https://ingest.example.org/"]\n', "[web.allowed_hosts] expected a list of host names"),
    ('[web]\nallowed_hosts = "ingest.example.org"\n', "[web.allowed_hosts] expected a list of host names"),
])
def test_bad_config_names_file_key_and_fix(tmp_path, text, needle):
    p = _cfg(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(p) in str(exc.value)
    assert needle in str(exc.value)


def test_languages_are_wordfreqs_and_a_wrong_one_is_named(tmp_path):
    """The languages are read from wordfreq's files without importing it: the same list it gives."""
    import wordfreq

    from ingest.config.load import _languages

    assert _languages() == set(wordfreq.available_languages()) and "en" in _languages()
    assert load_config(_cfg(tmp_path, '[relevance]\nlanguage = "de"\n')).relevance.language == "de"
    with pytest.raises(ConfigError) as exc:
        load_config(_cfg(tmp_path, '[relevance]\nlanguage = "xx"\n'))
    assert "[relevance.language]" in str(exc.value) and " en, " in str(exc.value)


def test_cli_exits_2_with_the_message(tmp_path):
    p = _cfg(tmp_path, "[fetch]\ntimout = 5\n")
    r = run_cli("--config", str(p), "status")
    assert r.code == 2
    assert str(p) in r.err and "fetch.timout" in r.err


def test_missing_config_file(tmp_path):
    r = run_cli("--config", str(tmp_path / "nope.toml"), "poll")
    assert r.code == 2 and "no such config file" in r.err


@pytest.mark.parametrize("files,needle", [
    ({}, "no seed files"),
    ({"a.txt": b"\x00\x01binary"}, "binary"),
    ({"a.txt": "caf\xe9 ".encode("latin-1") * 30}, "not UTF-8"),
    ({"a.txt": b"too short"}, "fewer than"),
    ({"a.txt": b"word " * 500_000}, "over the 2,000,000-byte limit"),
])
def test_bad_seeds_exit_2(tmp_path, files, needle):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, data in files.items():
        (seeds / name).write_bytes(data)
    p = _cfg(tmp_path, "")
    r = run_cli("--config", str(p), "poll")
    assert r.code == 2 and needle in r.err


def test_missing_seeds_folder(tmp_path):
    r = run_cli("--config", str(_cfg(tmp_path, "")), "poll")
    assert r.code == 2 and "seeds folder not found" in r.err


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("5m") == 300 and parse_duration("2h") == 7200
    assert parse_duration("1d") == 86400 and parse_duration(30) == 30
    with pytest.raises(ValueError):
        parse_duration("soon")
