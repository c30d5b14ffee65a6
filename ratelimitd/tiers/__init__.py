"""Tier tables: which limits every API key has, loaded from TOML into immutable objects.

``load_file`` / ``load_text`` read and validate a table (with its includes and
the bundled ``PRESETS``) and return a ``TierTable``; the engine then asks it
``route(key, endpoint)``. Every problem in a table raises ``ConfigError`` with
the file, the TOML path and what is wrong. The format: docs/tier-tables.md.
"""

from .loader import PRESETS, load_file, load_text, preset_path
from .model import (
    ALGORITHMS,
    BUCKET_KINDS,
    DEFAULT_MARGIN_CAP,
    SCOPES,
    WHEN_FULL,
    BucketSpec,
    EndpointSpec,
    KeySpec,
    ProviderSpec,
    Route,
    TierSpec,
    TierTable,
    default_margin,
)

__all__ = [
    "load_file",
    "load_text",
    "PRESETS",
    "preset_path",
    "ALGORITHMS",
    "BUCKET_KINDS",
    "SCOPES",
    "WHEN_FULL",
    "DEFAULT_MARGIN_CAP",
    "default_margin",
    "BucketSpec",
    "EndpointSpec",
    "TierSpec",
    "ProviderSpec",
    "KeySpec",
    "Route",
    "TierTable",
]
