"""The README's "Using it from httpx and requests": each provider's tier-table lines and httpx snippet work.

For every provider section the test starts a real daemon on the section's TOML,
runs its Python block as written (``BASE_URL`` and ``HEADERS`` pointing at a
local upstream, the daemon found through ``$RATELIMITD_SOCKET``), and checks
that the calls reached the upstream and were charged to the buckets the
section says.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ratelimitd_client import Client

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Using it from httpx and requests"

# provider -> (key, {bucket: used after the snippet}, calls the upstream sees)
EXPECTED = {
    "PolyNode": ("markets", {"standard": 2, "heavy": 1}, 2),
    "SURCHI": ("research", {"rest": 1}, 1),
    "Struct": ("acme-ingest", {"rest": 1}, 1),
    "LaserSell": ("trader", {"rest": 1}, 1),
    "Houdini": ("partner", {"quote": 1, "exchange": 0}, 1),
}


def sections() -> dict[str, tuple[str, str]]:
    """Return each provider subsection's (toml, python) code blocks."""
    text = README.read_text()
    body = text[text.index(SECTION) + len(SECTION):]
    body = body[: body.index("\n## ")]
    found = {}
    for part in body.split("\n### ")[1:]:
        name = part.splitlines()[0].strip()
        toml = re.search(r"```toml\n(.*?)```", part, re.S).group(1)
        python = re.search(r"```python\n(.*?)```", part, re.S).group(1)
        found[name] = (toml, python)
    return found


def test_every_seed_provider_has_a_section():
    assert sorted(sections()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_section_works(name, start_daemon, upstream, monkeypatch):
    toml, python = sections()[name]
    key, charged, calls = EXPECTED[name]
    daemon = start_daemon(toml, name=name.lower())
    server = upstream()
    monkeypatch.setenv("RATELIMITD_SOCKET", daemon.socket)
    exec(compile(python, f"README.md ({name})", "exec"), {"BASE_URL": server.url, "HEADERS": {"X-Api-Key": "mine"}})
    assert len(server.accepted) == calls
    with Client(daemon.socket) as client:
        used = {bucket["name"]: bucket["rates"][0]["used"] for bucket in client.show(key)["buckets"] if bucket.get("rates")}
    assert {bucket: used[bucket] for bucket in charged} == charged
