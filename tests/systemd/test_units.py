"""The unit files as systemd reads them: ``systemd-analyze verify`` is silent, ``security`` reaches SAFE (≤ 1.0),
sysusers creates the user and group the units name, and the units agree with the daemon's defaults.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ratelimitd_client.discovery import SYSTEM_SOCKET

from ratelimitd.cli.daemon import EX_CONFIG
from ratelimitd.tiers import load_file

from ..daemon import console_script

UNITS = Path(__file__).resolve().parents[2] / "systemd"
TARGET_EXPOSURE = 1.0

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (.ci/run installs it)")


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Return a unit file's settings: section -> name -> every value given (settings may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        name, _, value = line.partition("=")
        current.setdefault(name, []).append(value)
    return sections


def installable_copy(directory: Path) -> Path:
    """Copy the units to ``directory`` with ExecStart pointing at the installed ``ratelimitd``; return the service."""
    service = (UNITS / "ratelimitd.service").read_text()
    assert "ExecStart=/opt/ratelimitd/bin/ratelimitd " in service
    (directory / "ratelimitd.service").write_text(service.replace("/opt/ratelimitd/bin/ratelimitd", console_script("ratelimitd")))
    shutil.copy(UNITS / "ratelimitd.socket", directory / "ratelimitd.socket")
    return directory / "ratelimitd.service"


def verify(directory: Path) -> list[str]:
    """Run ``systemd-analyze verify`` on the two units in ``directory``; return what it said about them."""
    done = subprocess.run(
        ["systemd-analyze", "verify", str(directory / "ratelimitd.socket"), str(directory / "ratelimitd.service")],
        capture_output=True, text=True, timeout=60,
    )
    # verify exits 0 on settings it ignores and only warns; every line about our units is a finding
    said = [line for line in (done.stdout + done.stderr).splitlines() if "ratelimitd" in line]
    if done.returncode != 0:
        said.append(f"exit status {done.returncode}")
    return said


@needs_analyze
def test_systemd_analyze_verify_finds_nothing(tmp_path):
    installable_copy(tmp_path)
    assert verify(tmp_path) == []


@needs_analyze
def test_verify_would_report_a_broken_unit(tmp_path):
    # the check above is only worth something if a mistake shows up in what it reads
    service = installable_copy(tmp_path)
    service.write_text(service.read_text().replace("WatchdogSec=30s", "WatchdogSec=thirty"))
    assert any("WatchdogSec" in line or "sec value" in line for line in verify(tmp_path))


@needs_analyze
def test_security_exposure_is_safe_and_what_it_counts_is_explained(tmp_path):
    service = installable_copy(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(service)], capture_output=True, text=True, timeout=60
    )
    report = done.stdout + done.stderr
    overall = re.search(r"Overall exposure level for ratelimitd\.service: (\d+\.\d+) (\w+)", report)
    assert overall, report
    assert float(overall.group(1)) <= TARGET_EXPOSURE and overall.group(2) == "SAFE", report
    # every protection still counted against the unit is explained in its comments
    comments = "\n".join(line for line in (UNITS / "ratelimitd.service").read_text().splitlines() if line.startswith("#"))
    counted = [line.split()[1] for line in report.splitlines() if line.startswith("✗")]
    for setting in counted:
        name = setting.split("=")[0]
        assert f"{name}=" in comments, f"{setting} is counted against the unit but no comment says why it is left so"


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_sysusers_creates_the_user_and_group_the_units_use(tmp_path):
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(UNITS / "sysusers.d" / "ratelimitd.conf")], check=True, capture_output=True, timeout=60)
    groups = {line.split(":")[0]: line.split(":")[2] for line in (tmp_path / "etc" / "group").read_text().splitlines()}
    users = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc" / "passwd").read_text().splitlines()}
    service = read_unit(UNITS / "ratelimitd.service")["Service"]
    socket = read_unit(UNITS / "ratelimitd.socket")["Socket"]
    user, group = service["User"][0], service["Group"][0]
    assert socket["SocketGroup"] == [group]
    assert user in users and group in groups
    assert users[user][3] == groups[group]  # the daemon's primary group is the clients' group
    assert users[user][6] == "/usr/sbin/nologin"


def test_the_units_agree_with_the_daemon_and_the_issue():
    service = read_unit(UNITS / "ratelimitd.service")
    socket = read_unit(UNITS / "ratelimitd.socket")["Socket"]
    assert socket["ListenStream"] == [SYSTEM_SOCKET]  # where clients look by default
    assert socket["SocketMode"] == ["0660"]
    assert "Accept" not in socket  # the daemon adopts one listening socket
    s = service["Service"]
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["ExecReload"] == ["kill -HUP $MAINPID"] and s["Restart"] == ["on-failure"]
    assert f"--socket {SYSTEM_SOCKET}" in s["ExecStart"][0] and "--config /etc/ratelimitd/tiers.toml" in s["ExecStart"][0]
    assert s["StateDirectory"] == ["ratelimitd"] and s["RuntimeDirectory"] == ["ratelimitd"]
    # the socket file lives in the runtime directory and belongs to the socket unit: keep it on stop
    assert s["RuntimeDirectoryPreserve"] == ["yes"]
    assert s["RestartPreventExitStatus"] == [str(EX_CONFIG)]  # a bad tier table at start: restarting cannot help
    assert service["Unit"]["Requires"] == ["ratelimitd.socket"]


def test_the_sample_tier_table_is_valid():
    table = load_file(str(UNITS / "tiers.toml"))
    assert list(table.keys) == ["research"]
