"""Stage 6, out: what a person reads: the web view, digests, notifications."""
