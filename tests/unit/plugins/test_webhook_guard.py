"""Where a webhook may be sent (heron_plugins.core.webhooks.guard) and how long a
`Retry-After` makes it wait (heron_plugins.core.webhooks.sender)."""

from __future__ import annotations

import asyncio

import pytest
from heron_plugins.core.webhooks import guard
from heron_plugins.core.webhooks.sender import _retry_after

NONE = guard.Allowed.parse([])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.9.9.9:8080/x",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://localhost/",
        "http://[fd00::1]/",
        "http://224.0.0.1/",
    ],
)
def test_this_machine_the_private_network_and_metadata_are_refused(url: str) -> None:
    with pytest.raises(guard.Refused, match="HERON_PLUGINS_WEBHOOK_ALLOW_HOSTS"):
        asyncio.run(guard.check(url, NONE))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "http"),
        ("http://user:secret@example.com/", "credentials"),
        ("http:///path", "no host"),
        ("http://example.com:port/", "port"),
        ("http://" + "a" * 2000 + ".com/", "longer"),
    ],
)
def test_a_url_that_is_not_a_webhook_target_says_why(url: str, reason: str) -> None:
    with pytest.raises(guard.Refused, match=reason):
        guard.check_shape(url)


def test_the_allowlist_admits_names_and_ranges_and_nothing_else() -> None:
    allowed = guard.Allowed.parse(["127.0.0.0/8", "Internal.Example", "10.0.0.5"])
    asyncio.run(guard.check("http://127.0.0.1:9000/hook", allowed))
    asyncio.run(guard.check("http://internal.example/hook", allowed))
    asyncio.run(guard.check("http://10.0.0.5/hook", allowed))
    with pytest.raises(guard.Refused):
        asyncio.run(guard.check("http://10.0.0.6/hook", allowed))
    with pytest.raises(guard.Refused):
        asyncio.run(guard.check("http://[::1]/hook", allowed))


def test_a_public_address_is_taken() -> None:
    asyncio.run(guard.check("https://93.184.216.34/hook", NONE))


def test_retry_after_in_seconds_or_as_a_date_is_bounded() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after("999999") == 3600.0
    assert _retry_after("-3") == 0.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert _retry_after("soon") is None
    assert _retry_after(None) is None
