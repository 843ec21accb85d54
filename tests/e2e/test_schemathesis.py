"""The gateway fuzzed against its own OpenAPI document (`/openapi.json`) with schemathesis.

Every check schemathesis has runs (server errors, status codes, content types, response headers
and bodies against their schemas, schema-valid requests accepted, schema-invalid ones refused,
`Allow` on undeclared methods, auth that is not ignored, stateful links), in every phase
(coverage, fuzzing, stateful), with a fixed seed and a bounded number of examples per
operation: as nobody, as an admin, and for `POST /auth/logout` with a session of its own. Every
run must report 0 failures.

One check is replaced rather than run as shipped: `positive_data_acceptance` becomes
`positive_data_acceptance_beyond_state` (tests/e2e/schemathesis_hooks.py), which is the same
check except for the few 400s that depend on stored state or on one part of a body naming
another, listed there one by one.

The run has a stack of its own (SQLite), so that fuzzed writes disturb no other test, and the
admin run an account of its own, so that nothing it does to accounts can end it early (below).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack, start_stack

SEED = 20261201
# Examples per operation: two keep the run at about one minute on two cores beside the other
# test process (the suite has a 20-minute budget, and every route adds to this run; the fixed
# seed makes each run try the same ones).
MAX_EXAMPLES = 2
# Sign-in and sign-up are fuzzed too: limits high enough that they answer rather than 429.
LIMITS = {
    name: "100000"
    for name in (
        "HERON_GATEWAY_LOGIN_ATTEMPTS_PER_IP",
        "HERON_GATEWAY_LOGIN_ATTEMPTS_PER_ACCOUNT",
        "HERON_GATEWAY_REGISTER_ATTEMPTS_PER_IP",
        "HERON_GATEWAY_REFRESH_ATTEMPTS_PER_IP",
        "HERON_AUTH_LOGIN_ATTEMPTS_PER_IP",
    )
}
HOOKS = "tests.e2e.schemathesis_hooks"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("schemathesis"), extra_env=LIMITS)
    yield running
    running.stop()


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def schemathesis(
    stack: Stack,
    out: Path,
    headers: dict[str, str],
    operations: list[dict[str, Any]],
    options: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run the schemathesis CLI against `stack`; its JSON report, with the console output."""
    config = [
        f"seed = {SEED}",
        # One worker: with two, schemathesis's threads meet a CPython 3.11 race in the `ast`
        # module (its recursion-depth counter is shared by threads), and about one run in five
        # ended with "SystemError: AST constructor recursion depth mismatch" instead of a result.
        "workers = 1",
        "request-timeout = 10",
        f"generation.max-examples = {MAX_EXAMPLES}",
        f"headers = {_toml(headers)}",
    ]
    for operation in operations:
        config += ["", "[[operations]]", *(f"{k} = {_toml(v)}" for k, v in operation.items())]
    config_file = out / "schemathesis.toml"
    config_file.write_text("\n".join(config) + "\n")
    report = out / "report.json"
    argv = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config_file),
        "run",
        f"{stack.base_url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--report",
        "json,ndjson",
        "--report-json-path",
        str(report),
        "--report-ndjson-path",
        str(out / "events.ndjson"),
        "--no-color",
        *options,
    ]
    # Run in the test's own directory: schemathesis keeps a cache of past crashes in its
    # working directory, which would make one run depend on the last (and litter the checkout).
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": path}
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=300, cwd=out, check=False
    )
    (out / "console.txt").write_text(done.stdout + done.stderr)
    assert report.exists(), done.stdout[-5000:] + done.stderr[-5000:]
    result: dict[str, Any] = json.loads(report.read_text())
    result["console"] = done.stdout + done.stderr
    result["returncode"] = done.returncode
    return result


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "operations": result["operations"]["tested"],
        "cases": result["test_cases"]["generated"],
        "failures": result["test_cases"]["unique_failures"],
        "errors": len(result["errors"]),
        "seconds": round(result["running_time"]),
    }


# Three runs of about 100 s, 170 s and 2 s on a slow two-core machine, and the stack: more
# than the default.
@pytest.mark.timeout(600)
def test_fuzzing_finds_nothing(fuzz_stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {}

    def run(
        name: str,
        headers: dict[str, str],
        operations: list[dict[str, Any]],
        options: tuple[str, ...] = (),
    ) -> None:
        out = tmp_path / name
        out.mkdir()
        runs[name] = schemathesis(fuzz_stack, out, headers, operations, options)

    # Nobody first: the admin run changes what the `public` role may do.
    run("anonymous", {}, [])

    # An admin of its own. What it could do to itself is kept from ending the run:
    # - `POST /auth/logout` ends the session of the token it is sent with: the admin run leaves
    #   it out, and a run of its own covers it below, with a second session of the account.
    #   (With the spare session set as a header of that one operation in the admin run's
    #   config, requests of other operations were seen carrying it too: a run of its own.)
    # - `POST /auth/password` needs the current password, which the fuzzer never has;
    # - changing a user (`PATCH /api/users/{user_id}`) is pointed at a user made for it, so that
    #   the run's account is never disabled, demoted or given a new password; and it is left out
    #   of the stateful phase, whose links would point it at other users (the run's included).
    #   Deleting needs no such care: deleting one's own account is refused.
    # - rotating the signing key leaves tokens signed with the old one valid until they expire.
    fuzzer = fuzz_stack.user("admin")
    spare = fuzz_stack.login(fuzzer.email, fuzzer.password)["token"]
    changed = fuzz_stack.user("viewer")
    run(
        "admin",
        {"Authorization": f"Bearer {fuzzer.session['token']}"},
        [
            {
                "include-name": "PATCH /api/users/{user_id}",
                "parameters": {"user_id": changed.id},
                "phases": {"stateful": {"enabled": False}},
            },
        ],
        ("--exclude-path", "/auth/logout"),
    )
    # The admin run was signed in to the end (else most of it tested only 401s).
    assert fuzzer.client.get("/auth/me").status_code == 200
    run("logout", {"Authorization": f"Bearer {spare}"}, [], ("--include-path", "/auth/logout"))
    elapsed = time.monotonic() - started
    summary = {name: _figures(result) for name, result in runs.items()}
    print(f"schemathesis: {elapsed:.0f} s, {json.dumps(summary)}")
    for name, result in runs.items():
        assert result["returncode"] == 0, f"{name}:\n{result['console'][-20000:]}"
