"""``ratelimitctl report``: tell the daemon what a provider answered, for scripts that call APIs with curl.

The command reads the response the way the HTTP integrations do
(``ratelimitd_client.feedback.parse_response``: ``Retry-After``,
``X-RateLimit-*``, the providers' JSON refusals) from ``--header`` options, a
header dump (``curl -D FILE``) and the body, sends one ``report`` and prints
what the daemon did to each bucket. Registered in ``ctl`` as
``main.add_command(report)``.
"""

from __future__ import annotations

from typing import IO, Any

import click
from ratelimitd_client.feedback import parse_response

from . import render

__all__ = ["report", "parse_header", "read_dump"]


def parse_header(text: str) -> tuple[str, str]:
    """Return ``(name, value)`` of a ``"Name: value"`` line; raise ``ValueError`` when there is no name."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or " " in name.strip():
        raise ValueError(f"{text!r} is not a header: write 'Name: value', e.g. 'Retry-After: 12'")
    return name.strip(), value.strip()


def read_dump(text: str) -> tuple[int | None, list[tuple[str, str]]]:
    """Return the status and headers of the last response in a header dump (``curl -D``; redirects come first)."""
    status: int | None = None
    headers: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.rstrip("\r")
        if line.startswith("HTTP/"):
            parts = line.split()
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            headers = []  # a new response: forget the one before (a redirect, a 100 Continue)
        elif line.strip() and ":" in line:
            try:
                headers.append(parse_header(line))
            except ValueError:
                continue
    return status, headers


def _header_option(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, str]]:
    try:
        return [parse_header(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


_SAID = {
    "bucket": str,
    "retry_after": render.seconds,
    "reset_at": render.moment,
    "remaining": render.amount,
    "limit": render.amount,
    "window": render.seconds,
}


def _applied_text(key: str, endpoint: str, said: dict[str, Any], applied: list[dict[str, Any]]) -> str:
    """Return what was reported, then one row per bucket: what the daemon did, until when, what remains."""
    told = ", ".join(f"{name} {show(said[name])}" for name, show in _SAID.items() if name in said)
    lines = [f"reported {said['status']} for key {key} endpoint {endpoint}" + (f": {told}" if told else "")]
    rows = [
        (item.get("bucket"), item.get("action"), render.moment(item.get("until")), render.amount(item.get("remaining")))
        for item in applied
    ]
    if rows:
        lines.append(render.columns(("bucket", "action", "until", "remaining"), rows))
    return "\n".join(lines)


@click.command("report")
@click.argument("key")
@click.argument("endpoint")
@click.option(
    "--status",
    type=click.IntRange(100, 599),
    default=None,
    help="The HTTP status the provider answered. [default: from --dump-header]",
)
@click.option(
    "--header",
    "-H",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    callback=_header_option,
    help="A response header, e.g. 'Retry-After: 12'; repeatable.",
)
@click.option(
    "--dump-header",
    "dump",
    type=click.File("r"),
    default=None,
    metavar="FILE",
    help="The response's status line and headers as curl -D FILE wrote them (the last response, after redirects).",
)
@click.option("--body", type=click.File("rb"), default=None, metavar="FILE|-", help="The response body (- for stdin).")
@click.option(
    "--bucket", default=None, help="The bucket that refused, if the provider named it. [default: from the body's scope]"
)
@click.option("--provider", default=None, help="Read the body as this provider's. [default: KEY's provider]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the fields reported and the daemon's 'applied' list.")
@click.pass_obj
def report(
    socket: str | None,
    key: str,
    endpoint: str,
    status: int | None,
    headers: list[tuple[str, str]],
    dump: IO[str] | None,
    body: IO[bytes] | None,
    bucket: str | None,
    provider: str | None,
    as_json: bool,
) -> None:
    """Tell the daemon what the provider answered to a call of ENDPOINT with KEY.

    A 429 holds the endpoint's buckets (or the one the provider named) for
    every process until the provider's retry time; a lower X-RateLimit-Remaining
    is adopted until its reset. Retry-After, X-RateLimit-Limit/Remaining/Reset
    and the seed providers' JSON refusals are understood; what is not
    understood is reported as the status alone.

    Example:

    \b
        code=$(curl -s -D /tmp/h -o /tmp/b -w '%{http_code}' https://api.example.com/v1/x)
        ratelimitctl report research rest --status "$code" --dump-header /tmp/h --body /tmp/b
        ratelimitctl report research rest --status 429 --header 'Retry-After: 12'
    """
    from .ctl import connect

    all_headers = list(headers)
    if dump is not None:
        dumped_status, dumped = read_dump(dump.read())
        all_headers = dumped + all_headers
        if status is None:
            status = dumped_status
    if status is None:
        raise click.UsageError("give the provider's answer with --status N (or a --dump-header with a status line)")
    data = body.read() if body is not None else None
    with connect(socket) as client:
        if provider is None and data:
            provider = client.routes(key).provider
        feedback = parse_response(status, all_headers, data, provider)
        said = feedback.as_report_fields()
        if bucket is not None:
            said["bucket"] = bucket
        applied = client.report(key, endpoint, **said)
    if as_json:
        click.echo(render.to_json({"key": key, "endpoint": endpoint, "reported": said, "applied": applied}))
    else:
        click.echo(_applied_text(key, endpoint, said, applied))
