"""``ingest poll``: sync the feed list, then poll every feed once, on either backend.

Above both the one-process poll (ingest.run.poll.Poll, SQLite) and the
workers' passes (ingest.run.workers.Worker, PostgreSQL), so neither imports the
other's caller.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from ingest.config import Config
from ingest.run.executor import kill_workers
from ingest.run.poll import Poll, recall_hosts, remember_hosts
from ingest.run.progress import ProgressHook
from ingest.run.summary import PollSummary
from ingest.run.workers import SendAlerts, Worker
from ingest.sources.fetch import Fetcher
from ingest.store import SqlStore, StoreThread

log = logging.getLogger("ingest")


async def poll_once(config: Config, store: SqlStore, seeds: Sequence[str], executor: Executor,
                    *, clock: Callable[[], float] = time.time, progress: ProgressHook | None = None,
                    send_alerts: SendAlerts | None = None) -> PollSummary:
    """Sync the feed list with the config, then poll every active feed once.

    SIGTERM, SIGINT or SIGHUP (cron's ``timeout``, systemd's stop, a closed
    terminal) abandon the unfinished requests and commit what is complete;
    ``summary.interrupted`` names the signal. A second signal kills the
    workers and exits at once (the store stays consistent: every article is
    one transaction). Alerts (kept articles above [notify] instant_above) go to ``send_alerts``,
    run in a thread."""
    shared = store.backend == "postgresql"
    if shared:  # the feeds table is `ingest feeds sync`'s; "now" for every feed, leased host by host
        if not store.feeds() and config.feeds:
            log.warning("event=no_feeds store=postgresql hint='ingest feeds sync loads the %d feeds of %s into "
                        "the database'", len(config.feeds), config.path)
        store.make_all_due(clock())
    else:
        store.sync_feeds((f.url, f.name, f.enabled) for f in config.feeds)
    run_id = store.start_run("poll", clock())
    loop = asyncio.get_running_loop()
    async with Fetcher(config.fetch, clock=clock) as fetcher:
        db = StoreThread()
        await recall_hosts(db, store, fetcher, clock())
        poll: Poll | Worker
        if shared:
            from ingest.store.postgres import PgStore

            assert isinstance(store, PgStore)
            poll = Worker(config, store, seeds, fetcher, executor, db, clock=clock, send_alerts=send_alerts)
        else:
            poll = Poll(config, store, seeds, fetcher, executor, clock=clock, progress=progress, db=db)
        interrupted: list[str] = []  # the signal that cut the poll short

        def on_signal(sig: signal.Signals) -> None:
            if interrupted:
                log.warning("event=second_signal signal=%s exiting now", sig.name)
                kill_workers(executor)
                os._exit(128 + sig)
            log.warning("event=interrupted signal=%s committing what is complete", sig.name)
            interrupted.append(sig.name)
            poll.abort()

        stops = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        for sig in stops:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            summary = await (poll.run() if isinstance(poll, Poll) else poll.drain())
            summary.interrupted = interrupted[0] if interrupted else None
            await remember_hosts(db, store, fetcher, clock())
            summary.corpus_articles = (await db(store.metrics_snapshot))["articles"]
        finally:
            for sig in stops:
                loop.remove_signal_handler(sig)
            db.close()  # the store's thread has finished every write of the poll
        if isinstance(poll, Poll) and poll.alerts and send_alerts is not None:
            await asyncio.to_thread(send_alerts, poll.alerts)
    store.finish_run(run_id, clock(), summary.as_dict())
    return summary
