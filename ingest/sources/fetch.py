"""Polite HTTP fetching: one place that decides how every request is made.

* keep-alive pools, a global cap on requests in flight, per host a cap and a gap between sends;
* conditional GET (If-None-Match / If-Modified-Since) when validators are given;
* redirects followed by hand (MAX_REDIRECTS), each hop checked (http/https; no private addresses);
* bodies cut at ``max_bytes`` after decompression; one deadline per request (not its wait in the
  host's queue); host spacing counts from each send;
* Retry-After on 429/503 keeps the host quiet until it expires (capped at ``max_wait``), checked
  when a request's turn comes; robots.txt (protego) checked for pages, cached per origin;
* a name checked by the private-address guard is connected to at the addresses checked (no
  rebinding); credentials, a feed's headers and cookie go to their own host only;
* a proxy per request ([[feeds]] proxy), else [fetch] proxy, else (trust_env) the environment's.
Failures never raise: they come back as a FetchResult with ``error`` set; a request not sent
(quiet host, robots.txt unreadable) comes back with ``deferred_until``: not a failed attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx
from protego import Protego

from ingest.config import FetchSettings
from ingest.sources.exchange import Exchange, exchange
from ingest.sources.limits import KEEPALIVE, Host, drain, open_pools
from ingest.sources.pinning import PinnedBackend
from ingest.sources.urls import host_of, redact, resolve_safe, without_userinfo

log = logging.getLogger("ingest")
MAX_REDIRECTS = 10
ROBOTS_UNREACHABLE = "robots.txt unreachable (server error or no answer): not fetching the site for now"


class _Deferred(str):
    """An error string for a request that was not sent, with when it may be."""

    until: float

    def __new__(cls, text: str, until: float) -> _Deferred:
        obj = super().__new__(cls, text)
        obj.until = until
        return obj


_Raw = tuple[int, dict[str, str], bytes, str | None]  # status, headers, body, error
PERMANENT_REDIRECTS = (301, 308)
ROBOTS_TTL = 86400.0  # seconds a robots.txt is trusted
ROBOTS_RETRY = 300.0  # seconds before asking again for one that was unreachable or failed with a server error
MAX_SERVER_DELAY = 30 * 86400.0  # no server-given delay (Retry-After) is believed beyond 30 days
ROBOTS_MAX_CHARS = 500_000  # a robots.txt is read (and remembered) up to this size, as Google does


@dataclass
class HostMemory:
    """What the fetcher learned about hosts that outlives a process: Retry-After windows and
    robots.txt files (wall-clock times). The store keeps it between runs (``Store.host_memory``),
    so a cron-driven ``ingest poll`` respects a host's quiet window and reuses its robots.txt."""

    quiet_until: dict[str, float] = field(default_factory=dict)  # host -> until
    robots: dict[str, tuple[float, str, str | None]] = field(default_factory=dict)
    # origin -> (expires, state "rules" | "none" | "unreachable", the robots.txt text for "rules")


@dataclass(frozen=True)
class RequestOptions:
    """A feed's own request settings ([[feeds]] user_agent, headers, cookie, proxy)."""

    user_agent: str = ""  # "" = [fetch] user_agent
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # incl. Cookie; may hold secrets
    headers_host: str = ""  # the only host the headers are sent to
    proxy: str = field(default="", repr=False)  # "" = [fetch] proxy / environment

    def headers_for(self, url: str) -> dict[str, str]:
        if not self.headers or host_of(url) != self.headers_host:
            return {}
        return dict(self.headers)


NO_OPTIONS = RequestOptions()


@dataclass(frozen=True)
class FetchResult:
    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int  # 0 when no response was received
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    error: str | None = None
    permanent_redirect: str | None = None  # new URL when every hop was 301/308
    elapsed: float = 0.0
    deferred_until: float | None = None  # not sent (Retry-After, robots.txt unreadable): try again then
    exchanges: tuple[Exchange, ...] = ()  # with ``record``: every hop, redirects first, as sent and received

    @property
    def deferred(self) -> bool:
        return self.deferred_until is not None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def parse_retry_after(value: str | None, now: float, cap: float = MAX_SERVER_DELAY) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), at most ``cap``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return min(cap, max(0.0, when.timestamp() - now))


class Fetcher:
    """Use as ``async with Fetcher(settings) as f: await f.fetch(url)``."""

    def __init__(self, settings: FetchSettings, *, clock: Callable[[], float] = time.time,
                 transport: httpx.AsyncBaseTransport | None = None, max_wait: float = MAX_SERVER_DELAY) -> None:
        self.settings = settings
        self.clock = clock
        self.max_wait = min(max_wait, MAX_SERVER_DELAY)  # longest Retry-After believed
        self._pins: dict[str, tuple[str, ...]] = {}  # host name -> addresses the guard checked
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, Host] = {}
        self._in_flight = 0  # requests sent and not yet answered, all hosts
        self._quiet_until: dict[str, float] = {}  # host -> wall-clock time (Retry-After)
        self._robots: dict[str, tuple[float, Protego | str | None]] = {}  # origin -> (expiry, rules)
        self._robots_text: dict[str, str] = {}  # origin -> the robots.txt read (to remember it)
        self._changed_hosts: set[str] = set()  # learned since the last remember()
        self._changed_origins: set[str] = set()
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._transport = transport
        self._ssl = httpx.create_ssl_context()  # built once: each client would otherwise build its own
        self._open: OrderedDict[tuple[str, str], Host] = OrderedDict()  # (host, proxy) with a client, LRU first
        self._most_open = open_pools(settings.per_host)  # a pool per host: keep-alive across a big poll

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_idle(everything=True)

    async def close_idle(self, everything: bool = False) -> int:
        """Close the pools of hosts with no request in flight (all with ``everything``): an idle
        service keeps no socket and no client per host. Their politeness state stays."""
        idle = [key for key, state in self._open.items() if everything or not state.active]
        for key in idle:
            if (client := self._drop_pool(key)) is not None:
                await client.aclose()
        return len(idle)

    def _drop_pool(self, key: tuple[str, str]) -> httpx.AsyncClient | None:
        """Forget the (host, proxy) pool; its client, for the caller to close."""
        return self._open.pop(key).clients.pop(key[1], None)

    def proxy_for(self, url: str, options: RequestOptions = NO_OPTIONS) -> str:
        """The proxy a request to ``url`` goes through ("" = none): the feed's, else [fetch] proxy,
        else (with trust_env) the environment's, unless NO_PROXY names the host."""
        if options.proxy or self.settings.proxy:
            return options.proxy or self.settings.proxy
        if not self.settings.trust_env:
            return ""
        env = urllib.request.getproxies_environment()
        scheme = urlsplit(url).scheme
        proxy = env.get(scheme) or env.get("all") or ""
        if proxy and urllib.request.proxy_bypass_environment(host_of(url), env):  # type: ignore[attr-defined]
            return ""
        return proxy

    def _client_for(self, host: str, state: Host, proxy: str) -> httpx.AsyncClient:
        """One small pool per host (and proxy). A single shared pool gets slow with many connections
        (httpcore scans all of them per request, encode/httpx#3215) and evicts one host's
        keep-alive connections to make room for another's; a per-host pool does neither."""
        client = state.clients.get(proxy)
        if client is None:
            transport = self._transport
            limits = httpx.Limits(max_connections=self.settings.per_host,
                                  max_keepalive_connections=self.settings.per_host, keepalive_expiry=KEEPALIVE)
            if transport is None:
                transport = httpx.AsyncHTTPTransport(verify=self._ssl, trust_env=False, limits=limits,
                                                     proxy=httpx.Proxy(proxy) if proxy else None)
                # httpx has no public hook for the network backend; its pool keeps it here (a test
                # fails if a new httpx moves it: tests/e2e/hostile/test_nothing_leaked.py)
                pool = getattr(transport, "_pool", None)
                if pool is not None and hasattr(pool, "_network_backend"):
                    pool._network_backend = PinnedBackend(self._pins)
            client = state.clients[proxy] = httpx.AsyncClient(
                headers={"User-Agent": self.settings.user_agent, "Accept-Encoding": "gzip, deflate"},
                timeout=httpx.Timeout(self.settings.timeout), limits=limits,
                follow_redirects=False, transport=transport, trust_env=False, verify=self._ssl)
        self._open[(host, proxy)] = state
        self._open.move_to_end((host, proxy))
        while len(self._open) > self._most_open:  # close the least recently used idle pools
            old_key, old = next(iter(self._open.items()))
            if old.active:
                break
            if (old_client := self._drop_pool(old_key)) is not None:
                asyncio.ensure_future(old_client.aclose())
        return client

    async def robots_reason(self, url: str, options: RequestOptions = NO_OPTIONS) -> str | None:
        """Why robots.txt forbids fetching ``url`` (None when allowed). Cached per
        origin for a day. As RFC 9309 says: a 4xx robots.txt allows everything, a
        5xx or unreachable one disallows everything for now (asked again after
        ROBOTS_RETRY; see :meth:`robots_retry_at`)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:  # one robots.txt request per origin, however many pages wait for it
            cached = self._robots.get(origin)
            if cached is None or cached[0] < time.monotonic():
                res = await self.fetch(origin + "/robots.txt", accept="text/plain", options=options)
                rules: Protego | str | None
                if res.ok:
                    text = res.body[:ROBOTS_MAX_CHARS].decode("utf-8", "replace")
                    rules = Protego.parse(text)
                    self._robots_text[origin] = text
                elif 400 <= res.status < 500:
                    rules = None
                else:
                    rules = "unreachable"
                ttl = ROBOTS_TTL if rules != "unreachable" else ROBOTS_RETRY
                cached = self._robots[origin] = (time.monotonic() + ttl, rules)
                self._changed_origins.add(origin)
        found = cached[1]
        if found is None:
            return None
        if isinstance(found, str):
            return ROBOTS_UNREACHABLE
        product = (options.user_agent or self.settings.user_agent).split("/", 1)[0]
        return None if found.can_fetch(url, product) else "disallowed by robots.txt"

    def robots_retry_at(self, url: str) -> float:
        """Wall-clock time at which an unreadable robots.txt of ``url``'s origin is asked for again."""
        parts = urlsplit(url)
        cached = self._robots.get(f"{parts.scheme}://{parts.netloc}")
        left = cached[0] - time.monotonic() if cached else 0.0
        return self.clock() + max(0.0, left)

    def recall(self, memory: HostMemory) -> None:
        """Take over what an earlier run learned (expired entries are ignored)."""
        now, mono = self.clock(), time.monotonic()
        for host, until in memory.quiet_until.items():
            if until > now and until > self._quiet_until.get(host, 0.0):
                self._quiet_until[host] = min(until, now + self.max_wait)
        for origin, (expires, state, text) in memory.robots.items():
            if expires <= now or origin in self._robots:
                continue
            rules: Protego | str | None = None
            if state == "rules" and text is not None:
                rules = Protego.parse(text)
                self._robots_text[origin] = text
            elif state == "unreachable":
                rules = "unreachable"
            self._robots[origin] = (mono + min(expires - now, ROBOTS_TTL), rules)

    def inherit(self, retired: Fetcher) -> None:
        """Share what a fetcher being replaced (a reload with other [fetch] settings) knows and goes on
        learning while its last polls finish: Retry-After windows, robots.txt files and each host's
        spacing. A window learned by either holds for both; the store has it only after a poll ends."""
        for host, until in self._quiet_until.items():
            retired._quiet_until[host] = max(until, retired._quiet_until.get(host, 0.0))
        self._quiet_until = retired._quiet_until
        retired._robots.update({o: r for o, r in self._robots.items() if o not in retired._robots})
        retired._robots_text.update({o: t for o, t in self._robots_text.items() if o not in retired._robots_text})
        self._robots, self._robots_text = retired._robots, retired._robots_text
        retired._changed_hosts |= self._changed_hosts
        retired._changed_origins |= self._changed_origins
        self._changed_hosts, self._changed_origins = retired._changed_hosts, retired._changed_origins
        for host, old in retired._hosts.items():
            state = self._hosts.setdefault(host, Host(self.settings.per_host))
            state.next_start = max(state.next_start, old.next_start)
            if old.heard.is_set():
                state.contacted = True
                state.heard.set()

    def remember(self) -> HostMemory:
        """What was learned since the last call (for the store)."""
        now, mono = self.clock(), time.monotonic()
        out = HostMemory()
        for host in self._changed_hosts:
            out.quiet_until[host] = self._quiet_until.get(host, 0.0)
        for origin in self._changed_origins:
            expires, rules = self._robots[origin]
            state = "unreachable" if isinstance(rules, str) else "none" if rules is None else "rules"
            out.robots[origin] = (now + max(0.0, expires - mono), state, self._robots_text.get(origin)
                                  if state == "rules" else None)
        self._changed_hosts.clear()
        self._changed_origins.clear()
        return out

    def hold_off(self, host: str, until: float) -> None:
        """No request to ``host`` before wall-clock ``until``: the spacing another worker's last request
        set (ingest.run.workers hands hosts from worker to worker)."""
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = Host(self.settings.per_host)
        state.next_start = max(state.next_start, time.monotonic() + (until - self.clock()))

    def next_start(self, host: str) -> float:
        """Wall-clock time before which this fetcher would send ``host`` nothing (0: no request yet)."""
        state = self._hosts.get(host)
        if state is None or not state.next_start:
            return 0.0
        return self.clock() + (state.next_start - time.monotonic())

    def in_flight(self) -> int:  # requests sent and not yet answered (not those waiting their turn)
        return self._in_flight

    def host_quiet_until(self, url: str) -> float:
        """Wall-clock time before which ``url``'s host asked not to be contacted."""
        return self._quiet_until.get(host_of(url), 0.0)

    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                    trusted: bool = False, accept: str | None = None,
                    options: RequestOptions = NO_OPTIONS, record: bool = False) -> FetchResult:
        """GET ``url``. ``trusted`` (configured feed URLs) skips the address check for the first hop only;
        redirects are always checked. ``record``: keep each hop as exchanged (``exchanges``, the archive's)."""
        started = time.monotonic()
        headers = {}
        if options.user_agent:
            headers["User-Agent"] = options.user_agent
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        capture: list[Exchange] | None = [] if record else None
        result = await self._follow(url, headers, trusted, options, capture)
        elapsed = time.monotonic() - started
        if log.isEnabledFor(logging.DEBUG):  # the log's formatter redacts credentials in the URLs
            log.debug("url=%s event=request status=%d ms=%.0f%s%s", url, result.status, elapsed * 1000,
                      f" final={result.final_url}" if result.final_url != url else "",
                      f" deferred_until={result.deferred_until:.0f}" if result.deferred_until else
                      f" error={result.error!r}" if result.error else "")
        return FetchResult(**{**result.__dict__, "elapsed": elapsed, "exchanges": tuple(capture or ())})

    async def _follow(self, url: str, headers: dict[str, str], trusted: bool,
                      options: RequestOptions, capture: list[Exchange] | None = None) -> FetchResult:
        current = url
        permanent = True
        seen = {url}
        for hop in range(MAX_REDIRECTS + 1):
            if not (trusted and hop == 0):
                reason, addresses = await resolve_safe(current, self.settings.allow_private_networks)
                if reason:
                    return FetchResult(url, current, 0, error=f"refused {current}: {reason}")
                if addresses:
                    self._pins[host_of(current)] = addresses
            own = options.headers_for(current)  # the feed's headers and cookie: its own host only
            status, resp_headers, body, error = await self._get(current, {**own, **headers},
                                                                self.proxy_for(current, options), capture)
            if isinstance(error, _Deferred):
                return FetchResult(url, current, 0, error=str(error), deferred_until=error.until)
            if error:
                return FetchResult(url, current, status, resp_headers, error=error)
            if status in (301, 302, 303, 307, 308) and "location" in resp_headers:
                permanent = permanent and status in PERMANENT_REDIRECTS
                target = urljoin(current, resp_headers["location"].strip())
                if host_of(target) != host_of(current):
                    target = without_userinfo(target)  # credentials are for the host they were given for
                if target in seen:
                    return FetchResult(url, current, status, resp_headers, error=f"redirect loop at {target}")
                seen.add(target)
                current = target
                continue
            error = None if 200 <= status < 300 or status == 304 else f"HTTP {status}"
            moved = current if permanent and current != url else None
            return FetchResult(url, current, status, resp_headers, body, error=error, permanent_redirect=moved)
        return FetchResult(url, current, 0, error=f"more than {MAX_REDIRECTS} redirects")

    def _quiet(self, host: str) -> _Deferred | None:
        quiet = self._quiet_until.get(host, 0.0)
        if quiet > self.clock():
            return _Deferred(f"host {host} asked not to be contacted for {quiet - self.clock():.0f}s more "
                             f"(Retry-After)", quiet)
        return None

    async def _get(self, url: str, headers: dict[str, str], proxy: str = "",
                   capture: list[Exchange] | None = None) -> _Raw:
        host = host_of(url)
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = Host(self.settings.per_host)
        if deferred := self._quiet(host):
            return 0, {}, b"", deferred
        async with state.slots:
            first = not state.contacted
            if not first and not state.heard.is_set():
                # the first answer from a host may ask for quiet (Retry-After): nothing more is sent
                # before it, however slow it is (a slow first answer must not let a second request out)
                await state.heard.wait()
            state.contacted = True
            try:
                while True:
                    await self._wait_turn(state)
                    # checked again at send time: a 429 may have come while this request waited its turn
                    if deferred := self._quiet(host):
                        return 0, {}, b"", deferred
                    await self._global.acquire()  # spacing counts from the send: else back in line
                    if time.monotonic() - state.last_sent >= self.settings.host_delay:
                        break
                    self._global.release()
                state.last_sent = time.monotonic()
                state.next_start = max(state.next_start, state.last_sent + self.settings.host_delay)
                try:
                    # the deadline covers the request itself (connect, headers, body), not the
                    # wait for this host's turn: politeness queues must not turn into timeouts
                    state.active += 1
                    self._in_flight += 1
                    try:
                        async with asyncio.timeout(self.settings.timeout):
                            return await self._request(self._client_for(host, state, proxy), url, host, headers,
                                                       proxy, capture)
                    except TimeoutError:
                        return 0, {}, b"", f"timed out after {self.settings.timeout:g}s"
                    finally:
                        state.active -= 1
                        self._in_flight -= 1
                finally:
                    self._global.release()
            finally:
                if first:  # answered, failed, deferred or cancelled: the others may go
                    state.heard.set()

    async def _request(self, client: httpx.AsyncClient, url: str, host: str, headers: dict[str, str],
                       proxy: str = "", capture: list[Exchange] | None = None) -> _Raw:
        try:
            async with client.stream("GET", url, headers=headers) as resp:
                resp_headers = {k.lower(): v for k, v in resp.headers.items()}
                if capture is not None:
                    capture.append(exchange(resp))
                if resp.status_code in (429, 503):
                    wait = parse_retry_after(resp_headers.get("retry-after"), self.clock(), self.max_wait)
                    if wait is not None:
                        self._quiet_until[host] = self.clock() + wait
                        self._changed_hosts.add(host)
                if not 200 <= resp.status_code < 300:
                    await drain(resp.aiter_raw())  # the connection stays open (a re-poll's 304s)
                    return resp.status_code, resp_headers, b"", None
                declared = resp_headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.settings.max_bytes and \
                        "content-encoding" not in resp_headers:
                    return resp.status_code, resp_headers, b"", \
                        f"body of {int(declared):,} bytes exceeds max_bytes {self.settings.max_bytes:,}"
                chunks = []
                total = 0
                async for chunk in resp.aiter_bytes():
                    total += len(chunk)
                    if total > self.settings.max_bytes:
                        return resp.status_code, resp_headers, b"", \
                            f"body exceeds max_bytes {self.settings.max_bytes:,} (after decompression)"
                    chunks.append(chunk)
                body = b"".join(chunks)
                if capture is not None:
                    capture[-1] = dataclasses.replace(capture[-1], body=body)
                return resp.status_code, resp_headers, body, None
        except httpx.DecodingError as exc:
            return 0, {}, b"", f"cannot decode body: {exc}"
        except httpx.InvalidURL as exc:  # raised by httpx for an unusable Location header, too
            return 0, {}, b"", f"invalid URL or redirect target: {exc}"
        except (httpx.ProxyError, httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if proxy:  # most likely the proxy itself: say so (without its password)
                return 0, {}, b"", f"cannot connect through proxy {redact(proxy)}: {type(exc).__name__}: {exc}"
            return 0, {}, b"", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except (httpx.HTTPError, OSError, UnicodeError, ValueError) as exc:
            return 0, {}, b"", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    async def _wait_turn(self, state: Host) -> None:
        """Space request starts to one host by at least host_delay (a stalled loop releases no burst)."""
        async with state.lock:
            delay = state.next_start - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            state.next_start = time.monotonic() + self.settings.host_delay
