"""The configuration: its types (settings) and the reader of config.toml (load).

Below every other stage: the readers receive the settings they need.
"""

from ingest.config.load import _DURATION, header_value_ok, load_config, parse_duration, proxy_reason
from ingest.config.settings import (
    DEFAULT_CONFIG,
    DEFAULT_USER_AGENT,
    ArchiveSettings,
    BackfillSettings,
    Config,
    ConfigError,
    DigestSettings,
    FeedSettings,
    FetchSettings,
    NotifySettings,
    Paths,
    RelevanceSettings,
    ScheduleSettings,
    StoreSettings,
    WebSettings,
    WorkerSettings,
    check_listen,
    is_loopback,
)

__all__ = [
    "Config", "ConfigError", "DEFAULT_CONFIG", "DEFAULT_USER_AGENT", "DigestSettings", "FeedSettings",
    "FetchSettings", "NotifySettings", "Paths", "RelevanceSettings", "ScheduleSettings", "StoreSettings",
    "WebSettings", "WorkerSettings", "BackfillSettings", "ArchiveSettings", "_DURATION", "check_listen",
    "header_value_ok", "is_loopback", "load_config", "parse_duration", "proxy_reason",
]
