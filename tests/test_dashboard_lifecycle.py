"""`cnnkeras ui` never leaves its MLflow server behind, however the command ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cnnkeras.tracking import dashboard


def processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def living_group(group: int) -> list[int]:
    return [pid for pid, (_, pgrp, state) in processes().items() if pgrp == group
            and state not in ("Z", "X")]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table")
@pytest.mark.parametrize("signum", [
    pytest.param(signal.SIGINT, marks=pytest.mark.slow),  # Ctrl-C: the browser test's path too
    signal.SIGTERM,  # the fast suite's case; the others each start a server too
    pytest.param(signal.SIGHUP, marks=pytest.mark.slow),
    pytest.param(signal.SIGKILL, marks=pytest.mark.slow)], ids=lambda s: signal.Signals(s).name)
def test_the_server_dies_with_the_command(signum, tracking_store, tmp_path, loopback):
    port = loopback.free_port()
    health = f"http://127.0.0.1:{port}/health"
    page = f"http://127.0.0.1:{port}/"
    # One case binds every address: other machines are let in (and warned about).
    host = "0.0.0.0" if signum == signal.SIGTERM else "127.0.0.1"
    with open(tmp_path / "ui.log", "w") as log:
        command = subprocess.Popen(
            [sys.executable, "-m", "cnnkeras", "ui", "--port", str(port), "--host", host],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=as_from_a_terminal)
    try:
        loopback.wait_for_http(health, command)
        if host == "0.0.0.0":
            assert "no authentication" in (tmp_path / "ui.log").read_text()
            assert status_for_host(page, "mlflow.example.org") == 200
        else:  # MLflow's own guard against DNS rebinding (/health is exempt from it)
            assert status_for_host(page, "mlflow.example.org") == 403
        (group,) = {pgrp for pid, (ppid, pgrp, _) in processes().items() if ppid == command.pid}
        assert group != os.getpgid(command.pid)  # the server runs in a group of its own
        assert len(living_group(group)) >= 2  # the watchdog and mlflow's server
        os.kill(command.pid, signum)
        command.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (living_group(group) or loopback.answers(health)):
            time.sleep(0.25)
        assert living_group(group) == [], (tmp_path / "ui.log").read_text()
        if signum in (signal.SIGTERM, signal.SIGHUP):  # said in one line, exit 128 + signal
            name = signal.Signals(signum).name
            assert f"cnnkeras ui: stopped by {name}" in (tmp_path / "ui.log").read_text()
            assert command.returncode == 128 + signum
        assert not loopback.answers(health)
    finally:
        if command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)


def as_from_a_terminal() -> None:
    """SIGINT as a terminal's process has it: a shell without job control (CI, ``cmd &``)
    starts its background jobs with SIGINT ignored, and the ignoring is inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def status_for_host(url: str, host: str) -> int:
    """The HTTP status of ``url`` asked for as if this machine were called ``host``."""
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        return urllib.request.urlopen(request, timeout=5).status
    except urllib.error.HTTPError as err:
        return err.code


def test_allowed_hosts_default_to_everyone_only_beyond_loopback():
    assert "--allowed-hosts" not in dashboard.server_command("sqlite:///x", host="127.0.0.1",
                                                              port=5000, workers=1)
    wide = dashboard.server_command("sqlite:///x", host="0.0.0.0", port=5000, workers=1)
    assert wide[wide.index("--allowed-hosts") + 1] == "*"
    chosen = dashboard.server_command("sqlite:///x", host="0.0.0.0", port=5000, workers=1,
                                      allowed_hosts="ml.example.org")
    assert chosen[chosen.index("--allowed-hosts") + 1] == "ml.example.org"

