"""seed-ingest: follow feeds, keep the articles that resemble your seed texts."""

__version__ = "0.2.0"
