"""Settings are read from Heron's own variable names only."""

from __future__ import annotations

import pytest
from heron_auth.settings import AuthSettings
from heron_gateway.settings import GatewaySettings


def test_unprefixed_variables_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "LOG_LEVEL": "DEBUG",
        "DATA_DIR": "/elsewhere",
        "ADMIN_PASSWORD": "from-another-program",
        "INTERNAL_SECRET": "guessable",
        "AUTH_TARGET": "203.0.113.1:1",
    }.items():
        monkeypatch.setenv(name, value)
    for settings in (AuthSettings(), GatewaySettings()):
        assert settings.log_level == "INFO"
        assert str(settings.data_dir) == "data"
        assert settings.internal_secret == ""
        assert settings.auth_target == "127.0.0.1:50051"
    assert AuthSettings().admin_password == ""


def test_heron_names_and_constructor_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("HERON_AUTH_STATE_POLL_SECONDS", "2.5")
    assert AuthSettings().log_level == "DEBUG"
    assert AuthSettings().auth_poll_seconds == 2.5
    assert str(AuthSettings(data_dir="/tmp/x").data_dir) == "/tmp/x"
