"""`heron up`: the one-command quickstart, started and stopped as a user would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from heron_common.registry import SERVICES

from tests.conftest import free_port

HERON = Path(sys.executable).parent / "heron"


def start_heron_up(
    data_dir: Path, ports: tuple[int, int, int] | None = None, **popen: Any
) -> tuple[subprocess.Popen[str], int]:
    """`heron up` on the gateway, content and auth ports given (else free ones; the other
    services on free ones too); returns the process and the gateway's port."""
    port, content_port, auth_port = ports or (free_port(), free_port(), free_port())
    env = {
        **os.environ,
        # Every service on a free port: a default one may be another stack's.
        **{s.port_variable: str(free_port()) for s in SERVICES},
        "HERON_GATEWAY_PORT": str(port),
        "HERON_CONTENT_GRPC_PORT": str(content_port),
        "HERON_AUTH_GRPC_PORT": str(auth_port),
    }
    proc = subprocess.Popen(
        [str(HERON), "--data-dir", str(data_dir), "up"], env=env, text=True, **popen
    )
    return proc, port


def wait_ready(proc: subprocess.Popen[str], port: int, timeout: float = 60) -> bool:
    """Whether the gateway on `port` answered /ready before `proc` exited or time ran out."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def test_heron_up_serves_seeded_demo_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc, port = start_heron_up(tmp_path / "data", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        output = ""
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while "Press Ctrl-C" not in output and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output += line
        assert f"Heron is running at {url}" in output, output

        listed = httpx.get(f"{url}/api/collections/blog_posts/content?meta=total").json()
        assert listed["meta"]["total"] >= 3, listed
        # Anonymous readers get published items only; the demo draft is hidden.
        assert {i["status"] for i in listed["data"]} == {"published"}

        # The first admin was created and its generated password printed once.
        fields = dict(
            line.strip().split(":", 1) for line in output.splitlines() if line.startswith("  ")
        )
        email, password = fields["Admin"].strip(), fields["Password"].strip()
        session = httpx.post(f"{url}/auth/login", json={"email": email, "password": password})
        assert session.status_code == 200, session.text
        assert session.json()["user"]["role"] == "admin"
        headers = {"authorization": f"Bearer {session.json()['token']}"}
        everything = httpx.get(f"{url}/api/collections/blog_posts/content", headers=headers)
        assert "draft" in {i["status"] for i in everything.json()["data"]}
        assert (tmp_path / "data" / "auth.db").exists()
        assert (tmp_path / "data" / "content.db").exists()

        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        rest = proc.stdout.read()
        assert "heron: stopping" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    # Nothing is left listening.
    try:
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
        raise AssertionError("the gateway is still answering after Ctrl-C")
    except httpx.TransportError:
        pass


def test_heron_migrate_and_help(tmp_path: Path) -> None:
    heron = HERON
    helped = subprocess.run([str(heron), "--help"], capture_output=True, text=True, check=True)
    assert "up" in helped.stdout and "migrate" in helped.stdout
    migrated = subprocess.run(
        [str(heron), "--data-dir", str(tmp_path), "migrate"], capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "content.db").exists()
    again = subprocess.run(
        [str(heron), "--data-dir", str(tmp_path), "migrate"], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr


def test_killed_supervisor_leaves_no_process_behind(tmp_path: Path) -> None:
    proc, port = start_heron_up(tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/ready"
    deadline = time.monotonic() + 60
    ready = False
    while not ready and time.monotonic() < deadline:
        try:
            ready = httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            time.sleep(0.1)
    assert ready, "heron up never became ready"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            time.sleep(0.1)
        except httpx.TransportError:
            return
    raise AssertionError("the gateway outlived its killed supervisor")


def test_heron_up_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                str(HERON),
                "--data-dir",
                str(tmp_path),
                "up",
                "--port",
                str(port),
                "--content-port",
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is in use" in result.stderr
    assert "Heron is running" not in result.stdout


def test_user_create_without_a_terminal_asks_for_password_stdin(tmp_path: Path) -> None:
    # A new session has no controlling terminal, as under cron, CI or `ssh host cmd`.
    command = [str(HERON), "--data-dir", str(tmp_path), "user", "create", "--email", "ops@x.io"]
    refused = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused.stderr
    assert "--password-stdin" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "auth.db").exists()  # nothing was attempted

    created = subprocess.run(
        [*command, "--role", "admin", "--password-stdin"],
        input="ops-Password-12345\n",
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    assert "created ops@x.io (admin), username ops," in created.stdout
    named = subprocess.run(
        [
            *(str(HERON), "--data-dir", str(tmp_path), "user", "create", "--email", "Ed@X.io"),
            *("--username", "Editor.One", "--first-name", "Ed", "--password-stdin"),
        ],
        input="ed-Password-12345\n",
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=60,
    )
    assert named.returncode == 0, named.stderr
    assert "created ed@x.io (viewer), username editor.one," in named.stdout


def test_heron_up_restarts_at_once_on_the_ports_it_just_served(tmp_path: Path) -> None:
    ports = (free_port(), free_port(), free_port())
    port = ports[0]
    log_path = tmp_path / "heron.log"
    log = log_path.open("w")
    quiet: dict[str, Any] = {"stdout": log, "stderr": subprocess.STDOUT}
    proc, _ = start_heron_up(tmp_path / "data", ports, **quiet)
    try:
        assert wait_ready(proc, port), "heron up never became ready"
        # `Connection: close`: the gateway closes each connection first, so its side waits
        # in TIME_WAIT on the gateway's port for a minute after the run.
        for _ in range(20):
            reply = httpx.get(f"http://127.0.0.1:{port}/health", headers={"connection": "close"})
            assert reply.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    waiting = subprocess.run(
        ["ss", "-Htan", "state", "time-wait", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    )
    if waiting.returncode == 0:  # iproute2's ss: the scenario really is the one under test
        assert waiting.stdout.strip(), "no connection of the gateway is in TIME_WAIT"

    again, _ = start_heron_up(tmp_path / "data", ports, **quiet)
    try:
        ready = wait_ready(again, port)
        assert ready, f"heron up did not come back on the same ports:\n{log_path.read_text()}"
        again.send_signal(signal.SIGINT)
        assert again.wait(30) == 0
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
        log.close()


def test_heron_up_warns_that_it_ignores_service_targets(tmp_path: Path) -> None:
    content_port = free_port()
    env = {
        **os.environ,
        "HERON_AUTH_TARGET": "auth.elsewhere:50051",
        "HERON_CONTENT_TARGET": "content.elsewhere:50052",
    }
    with socket.socket() as taken:  # a busy port: it stops before starting anything
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        argv = [str(HERON), "--data-dir", str(tmp_path), "up", "--content-port", str(content_port)]
        argv += ["--port", str(taken.getsockname()[1])]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "ignoring HERON_AUTH_TARGET=auth.elsewhere:50051" in result.stderr
    assert (
        f"ignoring HERON_CONTENT_TARGET=content.elsewhere:50052: heron up connects its "
        f"processes to each other (127.0.0.1:{content_port}); pass --content-port"
    ) in result.stderr
    helped = subprocess.run([str(HERON), "up", "--help"], capture_output=True, text=True)
    assert "HERON_AUTH_TARGET" in helped.stdout
