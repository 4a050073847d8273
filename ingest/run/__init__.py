"""Stage 5, run: one poll and its stages (feeds, pages, decisions), the worker processes, schedules,
verdicts applied to the store, PostgreSQL workers."""
