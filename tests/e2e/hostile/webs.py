"""Hostile responses for the loopback web: each a route handler or body."""

from __future__ import annotations

import gzip
import time
import zlib

from tests.support.web import Host


def never_answers(req) -> None:
    time.sleep(30)  # accepts, reads the request, says nothing


def drip(req) -> None:
    req.send_response(200)
    req.send_header("Content-Type", "application/rss+xml")
    req.end_headers()
    try:
        for _ in range(60):
            req.wfile.write(b"<")
            req.wfile.flush()
            time.sleep(1)
    except OSError:
        pass


def huge(req) -> None:
    """200 MB, streamed (never held in memory here either)."""
    req.send_response(200)
    req.send_header("Content-Type", "application/rss+xml")
    req.send_header("Content-Length", str(200 * 1024 * 1024))
    req.end_headers()
    chunk = b"<rss>" + b" " * 65531
    try:
        for _ in range(200 * 16):
            req.wfile.write(chunk)
    except OSError:
        pass


def bomb(encoding: str):
    """~250 KB on the wire, 256 MiB once decoded (built before serving: compressing
    in the handler would hold the GIL and stall every other test server)."""
    data = b"<rss>" + b"\0" * (256 * 1024 * 1024)
    body = gzip.compress(data, 9) if encoding == "gzip" else zlib.compress(data, 9)
    del data

    def handler(req):
        Host.respond(req, 200, body, {"Content-Type": "application/rss+xml", "Content-Encoding": encoding})
    return handler


def lying_length(req) -> None:
    req.send_response(200)
    req.send_header("Content-Type", "application/rss+xml")
    req.send_header("Content-Length", "100000")
    req.end_headers()
    req.wfile.write(b"<rss><channel><title>short</title>")
    req.wfile.flush()
    req.close_connection = True


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>laugh</title><link>http://e.org/x</link></item>
</channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>xxe</title><item><title>&xxe;</title><link>http://e.org/xxe</link>
<description>&xxe;</description></item></channel></rss>"""
