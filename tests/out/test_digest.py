"""Digests: grouping, ordering, no repeats, feed health, safe HTML, valid Atom, empty periods."""

from __future__ import annotations

import feedparser
import pytest

from tests.conftest import build_news_web, run_cli, write_config
from tests.support.web import article_page, article_text, rss


def _poll(cfg):
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    return r.json()


def test_digest_groups_orders_and_reports_health(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    # a syndicated copy of the sanctions story on another host, listed by the RSS feed
    title, body = article_text("on_sanctions_gold")
    copy = web.host(7).add("/copy.html", article_page(title, body + "\n\nRepublished with permission.",
                                                      site="Other Site"))
    web.host(2).routes["/rss.xml"].body = rss("Feed A", [{"title": title, "link": copy, "guid": "copy"}] + [
        {"title": article_text(n)[0], "link": news.pages[n], "guid": f"id-{n}"}
        for n in ("on_hyesan_gold", "on_forced_labour_report", "off_football", "off_recipe")]).encode()
    cfg = write_config(tmp_path, news.feeds)
    assert _poll(cfg)["kept"] == 4
    r = run_cli("--config", str(cfg), "digest", "--format", "json")
    assert r.code == 0, r.err
    import json
    d = json.loads(r.out)
    scores = [it["score"] for it in d["items"]]
    assert len(scores) == 4 and scores == sorted(scores, reverse=True)  # most relevant first
    sanctions = next(it for it in d["items"] if it["title"] == title)
    assert [s["url"] for s in sanctions["other_sources"]] == [copy] or sanctions["url"] == copy
    for it in d["items"]:
        assert it["excerpt"] and it["terms"] and it["site"]
        assert it["excerpt"].count(". ") <= 3
    states = {h["url"]: h for h in d["health"]}
    assert states[news.dead[0]]["state"] == "backing off" and "HTTP 500" in states[news.dead[0]]["reason"]
    # the written files
    folder = tmp_path / "store" / "digests"
    md = next(folder.glob("*.md")).read_text(encoding="utf-8")
    assert md.startswith("# seed-ingest digest") and "## Sources" in md and "HTTP 500" in md
    assert (folder / "feed.xml").exists() and next(folder.glob("*.html"))


def test_no_item_twice_across_digests_and_empty_period(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3])
    _poll(cfg)
    first = run_cli("--config", str(cfg), "digest", "--format", "json")
    import json
    assert len(json.loads(first.out)["items"]) == 4
    second = run_cli("--config", str(cfg), "digest")  # nothing new since the first
    assert second.code == 0 and "Nothing new matched the seeds" in second.out
    # a new article arrives: only it is in the next digest
    title, body = article_text("on_smuggling_arrests")
    url = web.host(2).add("/news/new.html", article_page(title, body))
    web.host(2).routes["/rss.xml"].body = rss("Feed A", [{"title": title, "link": url, "guid": "new"}]).encode()
    web.host(2).routes["/rss.xml"].etag = '"a2"'
    assert _poll(cfg)["kept"] == 1
    third = json.loads(run_cli("--config", str(cfg), "digest", "--format", "json").out)
    assert [it["title"] for it in third["items"]] == [title]
    # an ad-hoc period (--since) is not recorded and may repeat
    week = json.loads(run_cli("--config", str(cfg), "digest", "--since", "7d", "--format", "json").out)
    assert len(week["items"]) == 5


def test_hostile_titles_and_text_are_escaped(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    evil_title = title + ' <script>alert("x")</script> <img src=x onerror=alert(1)>'
    evil_body = body + "\n\n<script>steal()</script> [click](javascript:alert(1))"
    page = h.add("/evil.html", article_page(evil_title, evil_body))
    feed = h.add("/feed.xml", rss("F", [{"title": evil_title, "link": page, "guid": "e"}]),
                 content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed])
    assert _poll(cfg)["kept"] == 1
    out = run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "html").out
    body = out.split("</style>", 1)[1].lower()
    assert "<script" not in body and "<img" not in body and 'href="javascript' not in body
    assert "&lt;script&gt;" in body  # the hostile title is shown, as text
    assert 'name="viewport"' in out and "<link" not in out and 'src="http' not in out  # self-contained
    md = run_cli("--config", str(cfg), "digest", "--since", "1d").out
    assert "<script>" not in md


def test_atom_output_parses(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3])
    _poll(cfg)
    out = run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "atom").out
    parsed = feedparser.parse(out.encode())
    assert not parsed.bozo and parsed.version == "atom10" and len(parsed.entries) == 4
    assert all(e.link.startswith("http://127.0.0.") for e in parsed.entries)
    run_cli("--config", str(cfg), "digest")
    rolling = feedparser.parse((tmp_path / "store" / "digests" / "feed.xml").read_bytes())
    assert not rolling.bozo and len(rolling.entries) == 4


def test_bad_since_is_a_clear_error(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [])
    r = run_cli("--config", str(cfg), "digest", "--since", "last tuesday")
    assert r.code == 2 and "expected a duration such as 24h" in r.err


class _SMTP:
    """A minimal SMTP server on loopback that keeps what it receives; with ``tls`` (an
    ssl.SSLContext) it offers STARTTLS, and AUTH only once the connection is encrypted."""

    def __init__(self, tls=None) -> None:
        import socketserver
        import threading

        self.messages: list[bytes] = []
        self.commands: list[str] = []
        self.auth: list[tuple[str, bool]] = []  # (AUTH line, sent over TLS)
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                secure = False
                self.wfile.write(b"220 test ESMTP\r\n")
                while line := self.rfile.readline():
                    cmd = line.decode().strip()
                    outer.commands.append(cmd.split(" ")[0].upper())
                    if cmd.upper().startswith("EHLO"):
                        ext = b"250-STARTTLS\r\n" if tls and not secure else b""
                        ext += b"250-AUTH PLAIN\r\n" if secure else b""
                        self.wfile.write(b"250-test\r\n" + ext + b"250 8BITMIME\r\n")
                    elif cmd.upper() == "STARTTLS" and tls:
                        self.wfile.write(b"220 go ahead\r\n")
                        self.wfile.flush()
                        self.connection = self.request = tls.wrap_socket(self.request, server_side=True)
                        self.rfile = self.connection.makefile("rb")
                        self.wfile = self.connection.makefile("wb", buffering=0)
                        secure = True
                    elif cmd.upper().startswith("AUTH"):
                        outer.auth.append((cmd, secure))
                        self.wfile.write(b"235 ok\r\n")
                    elif cmd.upper() == "DATA":
                        self.wfile.write(b"354 go\r\n")
                        data = b""
                        while (chunk := self.rfile.readline()) != b".\r\n":
                            data += chunk
                        outer.messages.append(data)
                        self.wfile.write(b"250 queued\r\n")
                    elif cmd.upper() == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.3", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_digest_is_emailed_when_configured(tmp_path, seeds_dir, web, monkeypatch):
    import email

    smtp = _SMTP()
    try:
        news = build_news_web(web)
        extra = (f'[digest]\nemail = "analyst@example.org"\nsmtp_host = "127.0.0.3"\nsmtp_port = {smtp.port}\n'
                 'starttls = false\n')
        cfg = write_config(tmp_path, news.feeds[:3], extra)
        _poll(cfg)
        monkeypatch.delenv("INGEST_SMTP_USER", raising=False)
        r = run_cli("--config", str(cfg), "digest")
        assert r.code == 0 and "sent to analyst@example.org" in r.err
        (raw,) = smtp.messages
        msg = email.message_from_bytes(raw)
        assert msg["To"] == "analyst@example.org" and "4 new stories" in msg["Subject"]
        kinds = {part.get_content_type() for part in msg.walk()}
        assert {"text/plain", "text/html"} <= kinds
        # credentials are never sent without STARTTLS, and never printed
        monkeypatch.setenv("INGEST_SMTP_USER", "me")
        monkeypatch.setenv("INGEST_SMTP_PASSWORD", "s3cret-password")
        r = run_cli("--config", str(cfg), "digest")
        assert r.code == 0 and "refusing to send SMTP credentials without STARTTLS" in r.err
        assert "s3cret" not in r.err + r.out and len(smtp.messages) == 1 and "AUTH" not in smtp.commands
        assert list((tmp_path / "store" / "digests").glob("*.md"))  # the files are written regardless
    finally:
        smtp.close()


def test_bad_digest_email_is_a_config_error(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [], '[digest]\nemail = "not an address"\n')
    r = run_cli("--config", str(cfg), "status")
    assert r.code == 2 and "[digest.email] expected an e-mail address" in r.err


def test_digest_is_emailed_over_starttls_with_credentials(tmp_path, seeds_dir, web, monkeypatch):
    """STARTTLS against a loopback server whose certificate comes from a throwaway CA (trustme):
    the certificate is verified, and the credentials travel only inside TLS."""
    import base64
    import email
    import ssl

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.3").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    smtp = _SMTP(tls=server_ctx)
    try:
        news = build_news_web(web)
        extra = (f'[digest]\nemail = "analyst@example.org"\nsmtp_host = "127.0.0.3"\nsmtp_port = {smtp.port}\n'
                 'starttls = true\n')
        cfg = write_config(tmp_path, news.feeds[:3], extra)
        _poll(cfg)
        monkeypatch.setenv("INGEST_SMTP_USER", "me")
        monkeypatch.setenv("INGEST_SMTP_PASSWORD", "s3cret-password")
        # without the CA the certificate is refused: nothing is sent, the files are written anyway
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-ca.pem"))
        r = run_cli("--config", str(cfg), "digest")
        assert r.code == 0 and "not sent to analyst@example.org" in r.err and not smtp.messages and not smtp.auth
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        r = run_cli("--config", str(cfg), "digest")
        assert r.code == 0 and "sent to analyst@example.org" in r.err, r.err
        # the digest that failed is sent now, then the new one
        assert len(smtp.messages) == 2 and smtp.commands.index("STARTTLS") < smtp.commands.index("AUTH")
        assert "4 new stories" in email.message_from_bytes(smtp.messages[0])["Subject"]
        for line, secure in smtp.auth:
            assert secure and base64.b64decode(line.split()[-1]) == b"\0me\0s3cret-password"
        assert "s3cret" not in r.out + r.err
    finally:
        smtp.close()
