"""Deployment files: the systemd unit passes `systemd-analyze verify`, the Containerfile runs the
service as a non-root user with the store on a volume and a health check the CLI understands."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.cli import build_parser
from tests.conftest import REPO

UNIT = REPO / "contrib" / "seed-ingest.service"


def _unit(path: Path, tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this machine's `ingest` (verify checks the file exists)."""
    exe = shutil.which("ingest") or str(Path(sys.executable).with_name("ingest"))
    out = tmp_path / "seed-ingest.service"
    out.write_text(path.read_text(encoding="utf-8").replace("/opt/seed-ingest/bin/ingest", exe), encoding="utf-8")
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_verifies(tmp_path):
    unit = _unit(UNIT, tmp_path)
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    problems = [ln for ln in (p.stdout + p.stderr).splitlines() if "seed-ingest.service" in ln]
    assert p.returncode == 0 and not problems, p.stdout + p.stderr
    # and verify does catch a broken unit (so the check above means something)
    bad = tmp_path / "broken" / "seed-ingest.service"
    bad.parent.mkdir()
    bad.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=sideways"), encoding="utf-8")
    p = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True, timeout=120)
    assert "ProtectSystem" in p.stdout + p.stderr or "protect system" in p.stdout + p.stderr


def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line and not line.startswith("["):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_systemd_unit_settings():
    d = _directives(UNIT.read_text(encoding="utf-8"))
    assert d["Type"] == ["simple"] and d["Restart"] == ["on-failure"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["ProtectSystem"] == ["strict"] and "/var/lib/seed-ingest" in d["ReadWritePaths"]
    assert d["NoNewPrivileges"] == ["yes"] and d["User"] == ["seed-ingest"]
    args = shlex.split(d["ExecStart"][0])[1:]
    ns = build_parser().parse_args(args)
    assert ns.command == "run" and ns.config == "/var/lib/seed-ingest/config.toml"


def test_containerfile():
    lines = [ln.strip() for ln in (REPO / "Containerfile").read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    instr = {}
    for ln in lines:
        word, _, rest = ln.partition(" ")
        instr.setdefault(word, []).append(rest)
    assert instr["FROM"][0].split(":")[-1].endswith("slim")
    assert instr["USER"] == ["seed-ingest"]  # not root
    assert '["/data"]' in instr["VOLUME"][0]
    health = instr["HEALTHCHECK"][0]
    cmd = json.loads(health.split("CMD", 1)[1].strip())
    assert cmd[0] == "ingest"
    ns = build_parser().parse_args(cmd[1:])
    assert ns.command == "status" and ns.check
    assert json.loads(instr["ENTRYPOINT"][0]) == ["ingest"]
    assert json.loads(instr["CMD"][0]) == ["run"]
    # what the image copies exists
    for src in ("pyproject.toml", "README.md", "ingest"):
        assert (REPO / src).exists()
