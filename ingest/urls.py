"""URL identity and URL safety.

``normalize`` gives the key under which a page is known (courlan: lower-case
scheme and host, default ports dropped, query sorted, tracking parameters
such as utm_* removed; plus no fragment). ``unsafe_reason`` says why a URL
taken from feed content must not be fetched (SSRF guard).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from urllib.parse import urldefrag, urlsplit

import courlan

METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def normalize(url: str) -> str:
    """The canonical form of ``url`` used as its identity everywhere."""
    url = urldefrag(url.strip())[0]
    try:
        return courlan.normalize_url(url) or url
    except (ValueError, AttributeError):
        return url


def url_hash(url: str) -> str:
    """First 16 hex digits of SHA-256 of the (normalised) URL: the corpus file suffix."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


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


async def unsafe_reason(url: str, allow_private: bool) -> str | None:
    """Why ``url`` (from feed content or a redirect) may not be fetched, or None.

    Resolves the host name and checks every address it maps to, so a public
    name pointing at a private address is refused too.
    """
    reason = scheme_reason(url)
    if reason:
        return reason
    host = urlsplit(url).hostname or ""
    try:
        return address_reason(ipaddress.ip_address(host), allow_private)
    except ValueError:
        pass  # a name, not a literal address
    # names are resolved even when private networks are allowed: a name may point at the
    # metadata address, which is always refused
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve host {host}: {exc}"
    for info in infos:
        reason = address_reason(ipaddress.ip_address(info[4][0]), allow_private)
        if reason:
            return reason
    return None
