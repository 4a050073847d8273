"""Prometheus metrics (prometheus_client), one registry per process: no global state.

Counters and histograms are fed by the pipeline as it works; the store-derived
gauges (feeds by state, corpus size, last digest) are read from the store at
scrape time, so ``ingest serve`` shows them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

PAGE_OUTCOMES = ("kept", "rejected", "duplicate", "empty", "error", "blocked", "deferred", "updated")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter("ingest_polls", "Polls run", registry=r)
        self.feed_requests = Counter("ingest_feed_requests", "Feed requests by outcome (200, 304, error)",
                                     ["outcome"], registry=r)
        self.pages = Counter("ingest_pages", "Article pages by outcome", ["outcome"], registry=r)
        self.fetch_seconds = Histogram("ingest_fetch_seconds", "Time of one HTTP fetch (all redirects)",
                                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r)
        self.extract_seconds = Histogram("ingest_extract_seconds", "Time to extract one page (in a worker)",
                                         buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10), registry=r)

    def watch_store(self, snapshot: Callable[[], dict]) -> None:
        """Gauges read at scrape time: ``snapshot()`` returns feeds by state, articles, last digest."""
        registry = self.registry

        class StoreCollector:
            def collect(self) -> Iterator[Metric]:
                snap = snapshot()
                feeds = GaugeMetricFamily("ingest_feeds", "Feeds by state", labels=["state"])
                for state, n in sorted(snap["feeds"].items()):
                    feeds.add_metric([state], n)
                yield feeds
                yield GaugeMetricFamily("ingest_corpus_articles", "Articles in the corpus folder",
                                        value=snap["articles"])
                yield GaugeMetricFamily("ingest_last_digest_timestamp_seconds",
                                        "When the newest recorded digest ended (0: none yet)",
                                        value=snap["last_digest"] or 0)

            def describe(self) -> list[Metric]:
                return []

        registry.register(StoreCollector())

    def render(self) -> bytes:
        return generate_latest(self.registry)
