"""One module per kind of window limit, each a small class with the same face (see ``base``)."""

from .base import Limiter, Rate
from .fixed_window import FixedWindow
from .gcra import GCRA
from .sliding_log import SlidingLog
from .sliding_window import SlidingWindow

# algorithm name in a tier table -> its class; a plain dict, no import side effects
ALGORITHMS: dict[str, type] = {
    SlidingLog.algorithm: SlidingLog,
    SlidingWindow.algorithm: SlidingWindow,
    FixedWindow.algorithm: FixedWindow,
    GCRA.algorithm: GCRA,
}

__all__ = ["ALGORITHMS", "FixedWindow", "GCRA", "Limiter", "Rate", "SlidingLog", "SlidingWindow"]
