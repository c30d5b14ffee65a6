"""One module per kind of window limit, each a small class with the same face (see ``base``)."""

from .base import Limiter, Rate
from .sliding_log import SlidingLog

# algorithm name in a tier table -> its class; a plain dict, no import side effects
ALGORITHMS: dict[str, type] = {
    SlidingLog.algorithm: SlidingLog,
}

__all__ = ["ALGORITHMS", "Limiter", "Rate", "SlidingLog"]
