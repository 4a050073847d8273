"""Stage 1, sources: URLs, fetching (politeness, robots.txt, pinning), feed formats, subscriptions (OPML,
the config's feed list, discovery)."""
