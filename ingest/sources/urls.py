"""URL identity, URL display and URL safety.

``normalize`` gives the key under which a page is known: lower-case scheme
and host (IDN as punycode), default port and fragment dropped, query sorted,
and only well-known click-tracking parameters (utm_*, fbclid, gclid …)
removed. It is an identity key only: pages are fetched by the link exactly
as the feed gives it, so a parameter that selects content (``?cid=3``,
``?ref=``, ``?session=``) is never lost. courlan's much wider tracker list
(and its lower-casing of the whole authority, passwords included) made
``view.php?cid=1..3`` one page.

``display`` is the form every output shows (logs, digests, exports,
status): credentials and secret query values redacted, host in punycode,
and every character that could end a Markdown link or an HTML attribute
percent-encoded. ``redact_text`` does the same to URLs inside free text
(error messages). ``resolve_safe`` says why a URL taken from feed content
must not be fetched (SSRF guard) and returns the checked addresses, which
the fetcher then connects to (no second DNS lookup).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import socket
from urllib.parse import SplitResult, parse_qsl, quote, urldefrag, urlencode, urlsplit, urlunsplit

METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


# click-tracking parameters: they never select content (the list Firefox's and Brave's
# query stripping share); anything else may, so it stays
_TRACKING = re.compile(r"utm_\w+|fbclid|gclid|gclsrc|dclid|gbraid|wbraid|msclkid|yclid|twclid|ttclid|igshid|"
                       r"mc_cid|mc_eid|_hsenc|_hsmi|__hssc|__hstc|__hsfp|hsctatracking|mkt_tok|oly_anon_id|"
                       r"oly_enc_id|vero_id|vero_conv|_openstat|wickedid|rb_clickid|s_cid|ml_subscriber(_hash)?",
                       re.IGNORECASE)
# query parameter names whose values are secrets (matched per word of the name: api_key, X-Amz-Signature)
_SECRET_WORDS = {"token", "key", "apikey", "password", "passwd", "pwd", "pass", "secret", "sig", "signature",
                 "auth", "authorization", "credential", "credentials", "session", "sessionid", "sid", "jwt",
                 "hash", "otp", "code"}
_NAME_WORD = re.compile(r"[a-z0-9]+")
REDACTED = "REDACTED"


def _host(hostname: str) -> str:
    """Lower-case host, IDN labels as punycode (xn--), never look-alike Unicode."""
    host = hostname.lower().rstrip(".")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return quote(host, safe="")


def _netloc(parts: SplitResult, userinfo: str | None) -> str:
    host = _host(parts.hostname or "")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and (parts.scheme, port) not in (("http", 80), ("https", 443)):
        host += f":{port}"
    return f"{userinfo}@{host}" if userinfo else host


def _userinfo(parts: SplitResult) -> str | None:
    """The authority's user:password exactly as written (urlsplit would not lower-case it, courlan did)."""
    netloc = parts.netloc
    return netloc.rpartition("@")[0] if "@" in netloc else None


def normalize(url: str) -> str:
    """The identity key of ``url`` (never used to fetch)."""
    url = urldefrag(url.strip())[0]
    try:
        parts = urlsplit(url)
        query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not _TRACKING.fullmatch(k))
        return urlunsplit((parts.scheme.lower(), _netloc(parts, _userinfo(parts)), parts.path or "/",
                           urlencode(query, quote_via=quote, safe="/:@!$'()*,;~"), ""))
    except ValueError:
        return url


def is_secret_param(name: str) -> bool:
    return any(w in _SECRET_WORDS for w in _NAME_WORD.findall(name.lower()))


def redact(url: str) -> str:
    """``url`` without its credentials: userinfo and the values of secret query parameters replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    userinfo = _userinfo(parts)
    query = parts.query
    if query and any(is_secret_param(k) for k, _ in parse_qsl(query, keep_blank_values=True)):
        query = "&".join(f"{k}={REDACTED}" if is_secret_param(k) else f"{quote(k)}={quote(v)}"
                         for k, v in parse_qsl(query, keep_blank_values=True))
    netloc = parts.netloc
    if userinfo is not None:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_SAFE_CHARS = "/:@!$&+,;=?~%*-._"  # RFC 3986 characters that cannot end a Markdown link or an HTML attribute


def display(url: str) -> str:
    """The form every output shows: redacted, click trackers (utm_* …) dropped, punycode host,
    and nothing that can break out of a Markdown link destination, an autolink or an HTML
    attribute (``<>()[]"'`` spaces and controls are percent-encoded)."""
    try:
        parts = urlsplit(redact(url.strip()))
        netloc = _netloc(parts, REDACTED if "@" in parts.netloc else None)
        if parts.query and any(_TRACKING.fullmatch(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
            # click trackers select nothing: shown without them, as the identity key has them
            parts = parts._replace(query="&".join(
                p for p in parts.query.split("&") if not _TRACKING.fullmatch(p.split("=", 1)[0])))
    except ValueError:
        return REDACTED
    enc = lambda v: quote(v, safe=_SAFE_CHARS)  # noqa: E731
    return urlunsplit((quote(parts.scheme.lower(), safe=""), netloc, enc(parts.path), enc(parts.query),
                       enc(parts.fragment)))


def display_host(url: str) -> str:
    """The host as shown: lower case, punycode for IDN."""
    try:
        return _host(urlsplit(url).hostname or "")
    except ValueError:
        return ""


def without_userinfo(url: str) -> str:
    """The URL without the user:password@ it may carry (credentials are for the host they were given for)."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def site_label(url: str) -> str:
    """The site as every output labels it: the host alone (never the userinfo a URL may carry),
    lower case, punycode, without "www.". Markup cannot get in: a host holds none of ``<>()[]"'``."""
    return display_host(url).removeprefix("www.")


def site_of(name: str | None, url: str) -> str:
    """The label of a page's site on every surface: the name the page declared for it (og:site_name,
    its JSON-LD publisher; ingest.text.extract.site_name), else its host as ``site_label`` gives it."""
    return name or site_label(url)


_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """Free text (an error message, a log line) with every URL in it redacted."""
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


def url_hash(url: str) -> str:
    """First 16 hex digits of SHA-256 of the (normalised) URL: the corpus file suffix."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def site_host(url: str) -> str:
    """The host a site is compared by (same site: same site_host): lower case, without "www.", any port."""
    return host_of(url).removeprefix("www.")


def scheme_reason(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'}: is not fetched (only http and https)"
    if not parts.hostname:
        return "URL has no host"
    return None


def address_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return f"address {ip} is a cloud metadata address (always refused)"
    if allow_private:
        return None
    if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return f"address {ip} is private, loopback, link-local or reserved (fetch.allow_private_networks = false)"
    return None


async def resolve_safe(url: str, allow_private: bool) -> tuple[str | None, tuple[str, ...]]:
    """(why ``url`` may not be fetched or None, the addresses checked).

    Resolves the host name and checks every address it maps to, so a public
    name pointing at a private address is refused too. The caller connects
    to the checked addresses only: a second lookup (DNS rebinding) could
    return another one.
    """
    reason = scheme_reason(url)
    if reason:
        return reason, ()
    host = urlsplit(url).hostname or ""
    try:
        return address_reason(ipaddress.ip_address(host), allow_private), ()
    except ValueError:
        pass  # a name, not a literal address
    # names are resolved even when private networks are allowed: a name may point at the
    # metadata address, which is always refused
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve host {host}: {exc}", ()
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    for addr in addresses:
        reason = address_reason(ipaddress.ip_address(addr), allow_private)
        if reason:
            return reason, ()
    return None, addresses
