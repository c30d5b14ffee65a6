"""Options and value types that several ``ratelimitctl`` commands share, as click decorators.

Kept apart from ``ctl`` so that command modules (``lease_cmds``) can use them
without importing ``ctl``, which registers those modules.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import click
from ratelimitd_client.amounts import to_amount

__all__ = ["Amount", "SignalName", "json_option", "permit_options", "scope_option", "parse_scopes"]


class Amount(click.ParamType):
    """A cost: an integer or a decimal (``0.1``), kept exact (``int`` or ``Decimal``)."""

    name = "N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return to_amount(value, "cost")
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class SignalName(click.ParamType):
    """A signal by name (``TERM``, ``SIGTERM``, ``term``) or number (``15``); converts to ``signal.Signals``."""

    name = "SIGNAL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, signal.Signals):
            return value
        text = str(value).strip().upper()
        try:
            if text.isdigit():
                return signal.Signals(int(text))
            return signal.Signals[text if text.startswith("SIG") else f"SIG{text}"]
        except (KeyError, ValueError):
            self.fail(f"{value!r} is not a signal: give a name such as TERM, INT, HUP, KILL or a number", param, ctx)


def parse_scopes(values: tuple[str, ...]) -> dict[str, str] | None:
    """Return ``NAME=VALUE`` strings as a scopes map (None when there are none); raise ``ValueError`` naming a bad one."""
    scopes: dict[str, str] = {}
    for text in values:
        name, equals, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name or not value:
            raise ValueError(f"{text!r} is not a scope: write NAME=VALUE, e.g. wallet=W1 or lease=L-7")
        if name in scopes and scopes[name] != value:
            raise ValueError(f"scope {name!r} given twice ({scopes[name]!r} and {value!r})")
        scopes[name] = value
    return scopes or None


def _scopes_callback(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str] | None:
    try:
        return parse_scopes(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--json``: print the documented JSON shape instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (shapes in docs/ratelimitctl.md).")(command)


def scope_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--scope NAME=VALUE`` (repeatable), passed to the acquire as its ``scopes`` map."""
    return click.option(
        "--scope",
        "scopes",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_scopes_callback,
        help="The value of a scope the endpoint's buckets count per (wallet=W1; lease=ID to take a lease inside "
        "another); repeatable.",
    )(command)


def permit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--cost``, ``--wait`` and ``--priority``, the options of an acquire."""
    options = (
        click.option(
            "--cost",
            type=Amount(),
            default=None,
            help='Units to take, exactly ("1", "0.1"); 0 peeks. [default: the endpoint\'s cost]',
        ),
        click.option(
            "--wait",
            type=click.FloatRange(min=0),
            default=None,
            metavar="SECONDS",
            help="Let the daemon queue the request up to SECONDS and grant it as soon as it can. [default: answer at once]",
        ),
        click.option("--priority", type=int, default=0, show_default=True, help="Waiters of higher priority are served first."),
    )
    for option in reversed(options):
        command = option(command)
    return command
