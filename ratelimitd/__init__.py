"""ratelimitd: one place on the machine that knows every API key's limits and what is spent."""

__version__ = "0.1.0"
