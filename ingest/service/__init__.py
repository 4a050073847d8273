"""Stage 7, service: the long-running process (``ingest run``) that schedules polls and digests,
serves the web view and reloads its config; it composes the run and out stages."""

from ingest.service.loop import Service, run_service

__all__ = ["Service", "run_service"]
