"""Webhook targets: public addresses only, every resolved address checked, the allow-list."""

from __future__ import annotations

import pytest

from cloud.integrations.webhook_targets import TargetPolicy, TargetRefused
from cloud.settings import CloudSettings


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://127.8.9.10:8080/x",
        "http://localhost/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.1.1/x",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://224.0.0.1/x",
        "http://[fd00::1]/x",
    ],
)
async def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused, match="not a public address"):
        await TargetPolicy().check(url)


async def test_unresolvable_or_malformed_targets_are_refused() -> None:
    with pytest.raises(TargetRefused, match="cannot resolve"):
        await TargetPolicy().check("http://no-such-host.invalid/x")
    with pytest.raises(TargetRefused, match="port"):
        await TargetPolicy().check("http://1.1.1.1:99999/x")
    with pytest.raises(TargetRefused, match="http"):
        await TargetPolicy().check("file:///etc/passwd")


async def test_a_public_address_is_pinned_with_host_and_sni_kept() -> None:
    # An address literal: nothing is resolved or contacted.
    target = await TargetPolicy().check("https://user:pw@1.1.1.1:8443/hook?a=1#frag")
    assert target.url == "https://1.1.1.1:8443/hook?a=1"
    assert (target.host, target.host_header) == ("1.1.1.1", "1.1.1.1:8443")


async def test_allow_list_takes_cidrs_and_host_names() -> None:
    policy = TargetPolicy(["10.20.0.0/16", "LocalHost."])
    assert str((await policy.check("http://10.20.3.4/x")).address) == "10.20.3.4"
    with pytest.raises(TargetRefused):
        await policy.check("http://10.21.0.1/x")
    pinned = await policy.check("http://localhost:9/x")
    assert pinned.address.is_loopback and pinned.host_header == "localhost:9"


def test_allow_list_setting_reads_a_comma_list_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUANG_WEBHOOK_ALLOWED_HOSTS", "hooks.internal, 10.20.0.0/16")
    read = CloudSettings(database_url="sqlite+aiosqlite:///:memory:")
    assert read.webhook_allowed_hosts == ["hooks.internal", "10.20.0.0/16"]
