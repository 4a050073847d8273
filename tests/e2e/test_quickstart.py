"""The README's "Five minutes with it", run line by line as a user would (in a shell, with the
installed `ingest` command), on a loopback site instead of a real one. Only what cannot run in a
test is changed: the site's address, loopback pages allowed, and the two long-running commands
(`ingest serve`, `ingest run`) left out; `p12` becomes an id `ingest review` printed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import build_news_web

REPO = Path(__file__).resolve().parents[2]


def quick_start() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Five minutes with it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.strip().splitlines()]


def test_the_readme_quick_start_works(tmp_path, web):
    news = build_news_web(web)
    site = news.feeds[0].rsplit("/", 1)[0] + "/"
    host = web.host(2)
    host.add("/", f'<html><head><link rel="alternate" type="application/rss+xml" href="{news.feeds[0]}">'
                  "</head><body>News</body></html>")
    bin_dir = Path(sys.executable).parent
    ingest = shutil.which("ingest", path=str(bin_dir)) or shutil.which("ingest")
    if ingest is None:
        pytest.skip("the `ingest` command is not installed (pip install -e .)")
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{Path(ingest).parent}:{os.environ.get('PATH', '')}"}
    cwd = tmp_path
    outputs: dict[str, str] = {}
    ran = []
    for line in quick_start():
        if line.startswith("pip install") or line in ("ingest serve", "ingest run"):
            continue
        line = line.replace("/path/to/examples/*.txt", f"{REPO}/seeds/*.txt").replace("~", str(tmp_path))
        line = re.sub(r"https://\S+", site, line)
        if line.startswith("ingest mark"):
            review = json.loads(subprocess.run("ingest review --json --limit 1", shell=True, cwd=cwd, env=env,
                                               capture_output=True, text=True, check=True).stdout.splitlines()[0])
            line = line.replace("p12", review["id"])
        proc = subprocess.run(line, shell=True, cwd=cwd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        outputs[line.split("  ")[0]] = proc.stdout + proc.stderr
        ran.append(line)
        if m := re.search(r"(?:^|&&\s*)cd\s+(\S+)", line):
            cwd = Path(m.group(1))
        if line.startswith("ingest example-config"):  # loopback pages are private addresses: allowed here only
            conf = cwd / "config.toml"
            text = conf.read_text()
            assert "# allow_private_networks = false" in text and '# host_delay = "1s"' in text
            conf.write_text(text.replace("# allow_private_networks = false", "allow_private_networks = true")
                            .replace('# host_delay = "1s"', "host_delay = 0"))
    assert any(r.startswith("ingest mark") for r in ran) and any(r.startswith("ingest poll") for r in ran)
    assert cwd == tmp_path / "follow"
    assert "[[feeds]]" in (cwd / "config.toml").read_text()
    assert list((cwd / "store" / "corpus").glob("*.txt")) or list((cwd / "store" / "withdrawn").glob("*.txt"))
    assert "ok" in outputs["ingest status"]
