"""Notifications through apprise: digests and instant alerts to a loopback JSON webhook and a
loopback SMTP server; failed deliveries retried at the next digest; no secret in any output."""

from __future__ import annotations

import email
import json

import pytest

from ingest.config import ConfigError, load_config
from tests.conftest import build_news_web, run_cli, write_config
from tests.out.test_digest import _SMTP
from tests.support.web import Host


def _hook(web, status: int = 200):
    h = web.host(60)
    state = {"status": status}

    def handler(req):
        Host.respond(req, state["status"], b"{}", {"Content-Type": "application/json"})

    h.add("/hook/s3cr3t-path", handler=handler)
    return h, state, f"json://{h.ip}:{h.port}/hook/s3cr3t-path?+X-Token=s3cr3t-header"


def _posts(h):
    return [json.loads(r.body) for r in h.requests if r.method == "POST"]


def test_digest_and_instant_alerts_to_a_json_webhook(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    hook, _, url = _hook(web)
    cfg = write_config(tmp_path, news.feeds[:3], f'[notify]\nurls = ["{url}"]\ninstant_above = 0.0\n')
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0 and r.json()["kept"] == 4
    alerts = _posts(hook)
    assert len(alerts) == 4  # one per kept article above instant_above
    assert all(a["title"].startswith("seed-ingest: ") and "score" in a["message"] for a in alerts)
    assert all(r.headers.get("x-token") == "s3cr3t-header" for r in hook.requests)
    r = run_cli("--config", str(cfg), "digest")
    assert r.code == 0, r.err
    (digest,) = _posts(hook)[4:]
    assert "4 new stories" in digest["title"]
    assert "Hyesan" in digest["message"] and digest["message"].startswith("#")  # the Markdown digest
    assert "s3cr3t" not in r.out + r.err


def test_failed_delivery_is_logged_without_secrets_and_retried(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    hook, state, url = _hook(web, status=500)
    cfg = write_config(tmp_path, news.feeds[:3], f'[notify]\nurls = ["{url}"]\n')
    assert run_cli("--config", str(cfg), "poll").code == 0
    log = tmp_path / "ingest.log"
    r = run_cli("--config", str(cfg), "--log-file", str(log), "digest")
    assert r.code == 0  # the digest files are written regardless
    assert "not sent to json://" in r.err and "retried at the next digest" in r.err
    assert "s3cr3t" not in r.out + r.err + log.read_text()
    assert len(_posts(hook)) == 1
    state["status"] = 200
    r = run_cli("--config", str(cfg), "digest")
    assert r.code == 0 and r.err.count(" sent to json://") == 2, r.err  # the failed one, then the new one
    titles = [p["title"] for p in _posts(hook)]
    assert "4 new stories" in titles[1] and "0 new stories" in titles[2]
    r = run_cli("--config", str(cfg), "digest")  # nothing is sent twice
    assert len(_posts(hook)) == 4


def test_apprise_mailto_to_a_loopback_smtp_server(tmp_path, seeds_dir, web):
    smtp = _SMTP()
    try:
        news = build_news_web(web)
        url = f"mailto://127.0.0.3:{smtp.port}?from=seed@example.org&to=analyst@example.org&mode=insecure"
        cfg = write_config(tmp_path, news.feeds[:3], f'[notify]\nurls = ["{url}"]\n')
        assert run_cli("--config", str(cfg), "poll").code == 0
        r = run_cli("--config", str(cfg), "digest")
        assert r.code == 0 and "sent to mailto://" in r.err, r.err
        (raw,) = smtp.messages
        msg = email.message_from_bytes(raw)
        assert "4 new stories" in msg["Subject"] and "analyst@example.org" in msg["To"]
    finally:
        smtp.close()


@pytest.mark.parametrize("value, message", [
    ('urls = ["nosuchservice://tok3n-s3cr3t@host/x"]', "notify.urls[0]"),
    ('urls = "json://host"', "notify.urls"),
    ('instant_above = 1.5', "notify.instant_above"),
])
def test_bad_notify_settings_are_config_errors_without_the_secret(tmp_path, value, message):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[notify]\n{value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert message in str(err.value) and "s3cr3t" not in str(err.value)
