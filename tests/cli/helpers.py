"""Helpers for ratelimitctl tests: a small tier table, and running the command in-process or as a real process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from decimal import Decimal
from typing import Any

from click.testing import CliRunner, Result

from ratelimitd.cli.ctl import main

# one provider, one key: "rest" 3 a minute; "heavy" takes from rest and heavy (1 a minute);
# "tick" 1 a second (for a wait that ends within the test); "credits" 1 an hour, in tenths
TABLE = """
[providers.p]
docs = "https://example.com/limits"

[providers.p.endpoints]
"rest" = ["rest"]
"heavy" = ["rest", "heavy"]
"tick" = ["tick"]
"credits" = ["credits"]

[providers.p.tiers.t]
rest = { rate = "3/1m" }
heavy = { rate = "1/1m" }
tick = { rate = "1/1s" }
credits = { rate = "1/1h" }

[providers.p.tiers.t.info]
history = "7 days"

[keys.k]
provider = "p"
tier = "t"
"""


def ctl(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ratelimitctl in-process with ``args``; re-raise an exception it did not turn into an exit status."""
    result = CliRunner(env=env).invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def parse(text: str) -> Any:
    """Return JSON ``text`` with its fractional numbers as exact ``Decimal``."""
    return json.loads(text, parse_float=Decimal)


def ctl_command() -> list[str]:
    """Return the command of the installed ``ratelimitctl`` (the console script, else the module)."""
    script = shutil.which("ratelimitctl")
    if script:
        return [script]
    return [sys.executable, "-c", "from ratelimitd.cli.ctl import main; main()"]


def ctl_process(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ratelimitctl`` as a process with ``args``; return it with its output as text."""
    return subprocess.run([*ctl_command(), *args], capture_output=True, text=True, timeout=30, **kwargs)
