"""Keys and secrets: production never generates one and names what is missing; development
still creates them on first use; `ruang keys generate` writes a set replicas agree on."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from cloud.app import create_app
from cloud.bookings.qrcheckin import CheckinKeys
from cloud.fleet.snapshots import SnapshotSigner
from cloud.keys import MissingKey, generate_key_set, key_problems, require_keys
from cloud.people.auth import TokenVerifier, mint_dev_token
from cloud.settings import CloudSettings
from cloud.visitors.passes import PassKeys
from dashboards.oidc import Flow, OidcClient
from edge.snapshot import SnapshotStore, load_trusted_keys
from launch.cli import main
from tests.edge.snapshots import body


def _production(var: Path, **overrides: object) -> CloudSettings:
    values: dict[str, object] = {
        "environment": "production",
        "database_url": f"sqlite+aiosqlite:///{var}/ruang.sqlite3",
        "telemetry_sqlite_path": var / "telemetry.sqlite3",
        "snapshot_key_path": var / "snapshot-signing-key.pem",
        "auth_dev_key_path": var / "dev-signing-key.pem",
    }
    return CloudSettings(**values | overrides)  # type: ignore[arg-type]


def _from_env_file(env_file: Path, monkeypatch: pytest.MonkeyPatch, var: Path) -> CloudSettings:
    """Settings exactly as a replica gets them: the generated env file in its environment."""
    for line in env_file.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    return CloudSettings(
        database_url=f"sqlite+aiosqlite:///{var}/ruang.sqlite3",
        telemetry_sqlite_path=var / "telemetry.sqlite3",
    )


def test_production_with_no_keys_names_every_missing_setting_and_creates_nothing(
    tmp_path: Path,
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    settings = _production(var)
    with pytest.raises(MissingKey) as missing:
        require_keys(settings)
    message = str(missing.value)
    for setting in (
        "RUANG_SNAPSHOT_KEY_PATH",
        "RUANG_AUTH_DEV_KEY_PATH",
        "RUANG_CHECKIN_QR_SECRET or RUANG_CHECKIN_QR_SECRET_FILE",
        "RUANG_VISITOR_PASS_SECRET or RUANG_VISITOR_PASS_SECRET_FILE",
        "RUANG_PSEUDONYM_SECRET or RUANG_PSEUDONYM_SECRET_FILE",
    ):
        assert setting in message, setting
    assert "ruang keys generate" in message
    # Asking a service for its key directly is refused the same way.
    for load in (SnapshotSigner.from_settings, CheckinKeys.from_settings, PassKeys.from_settings):
        with pytest.raises(MissingKey):
            load(settings)
    with pytest.raises(MissingKey, match="RUANG_AUTH_DEV_KEY_PATH"):
        mint_dev_token(settings, "p-ayu", ["asn"])
    assert list(var.iterdir()) == []
    # Signing in as anyone is for development: production turns it off with the key checks.
    assert not settings.dev_login_enabled
    assert CloudSettings(environment="development").dev_login_enabled


async def test_production_app_stops_at_start_up_before_touching_the_database(
    tmp_path: Path,
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    app = create_app(_production(var))
    with pytest.raises(MissingKey, match="RUANG_SNAPSHOT_KEY_PATH"):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started without its keys")
    assert list(var.iterdir()) == []  # no database, no generated key


def test_production_refuses_short_secrets_unreadable_files_and_bad_extra_keys(
    tmp_path: Path,
) -> None:
    key_set = generate_key_set(tmp_path / "keys")
    files = key_set.files
    base = {
        "snapshot_key_path": files["snapshot_key"],
        "auth_dev_key_path": files["auth_key"],
        "checkin_qr_secret_file": files["checkin_qr_secret"],
        "visitor_pass_secret_file": files["visitor_pass_secret"],
        "pseudonym_secret_file": files["pseudonym_secret"],
    }
    assert key_problems(_production(tmp_path, **base)) == []
    short = _production(tmp_path, **base | {"checkin_qr_secret": SecretStr("hunter2")})
    assert any("RUANG_CHECKIN_QR_SECRET: shorter than" in p for p in key_problems(short))
    gone = _production(tmp_path, **base | {"visitor_pass_secret_file": tmp_path / "nope"})
    assert any("RUANG_VISITOR_PASS_SECRET_FILE: cannot read" in p for p in key_problems(gone))
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello")
    extra = _production(tmp_path, **base | {"snapshot_extra_public_keys": [not_a_key]})
    assert any("RUANG_SNAPSHOT_EXTRA_PUBLIC_KEYS" in p for p in key_problems(extra))
    # With an identity provider the cloud signs no tokens of its own: no key needed for them.
    jwks = _production(
        tmp_path,
        **base
        | {"auth_dev_key_path": tmp_path / "absent.pem", "auth_jwks_url": "https://idp.invalid/j"},
    )
    assert key_problems(jwks) == []
    # A public OIDC client needs the flow key, or a sign-in could not end on another replica.
    oidc = _production(
        tmp_path, **base, oidc_issuer_url="https://idp.invalid", oidc_client_id="ruang"
    )
    assert any("RUANG_OIDC_FLOW_SECRET" in p for p in key_problems(oidc))


def test_development_still_creates_missing_keys_on_first_use_0600(tmp_path: Path) -> None:
    var = tmp_path / "var"
    settings = CloudSettings(
        snapshot_key_path=var / "snapshot-signing-key.pem",
        auth_dev_key_path=var / "dev-signing-key.pem",
    )
    assert settings.environment == "development"
    require_keys(settings)  # nothing to complain about: what is missing will be made
    signer = SnapshotSigner.from_settings(settings)
    checkin = CheckinKeys.from_settings(settings)
    passes = PassKeys.from_settings(settings)
    mint_dev_token(settings, "p-ayu", ["asn"])
    created = sorted(p.name for p in var.iterdir())
    assert created == [
        "checkin-qr-secret",
        "dev-signing-key.pem",
        "snapshot-signing-key.pem",
        "visitor-pass-secret",
    ]
    for name in created:
        assert stat.S_IMODE(os.stat(var / name).st_mode) == 0o600
    # Made once, then read back: a restart keeps the same keys.
    assert SnapshotSigner.from_settings(settings).key_id == signer.key_id
    assert CheckinKeys.from_settings(settings).key("L1-D1") == checkin.key("L1-D1")
    assert PassKeys.from_settings(settings).read(passes.token(3, "ABCDEFGHIJ")) == (3, "ABCDEFGHIJ")


async def test_replicas_given_one_key_set_agree_and_a_host_made_key_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_set = generate_key_set(tmp_path / "keys")
    a = _from_env_file(key_set.env_file, monkeypatch, tmp_path / "a")
    b = _from_env_file(key_set.env_file, monkeypatch, tmp_path / "b")
    assert a.environment == b.environment == "production"
    require_keys(a)
    # QR check-in codes printed from one replica are valid on the other.
    assert CheckinKeys.from_settings(a).url("L1-D22") == CheckinKeys.from_settings(b).url("L1-D22")
    assert CheckinKeys.from_settings(b).valid("L1-D22", CheckinKeys.from_settings(a).key("L1-D22"))
    # A visitor pass signed by one replica reads on the other.
    token = PassKeys.from_settings(a).token(42, "ABCDEFGHIJ")
    assert PassKeys.from_settings(b).read(token) == (42, "ABCDEFGHIJ")
    # Snapshots signed by one verify with the key the other hands to nodes.
    signer_a, signer_b = SnapshotSigner.from_settings(a), SnapshotSigner.from_settings(b)
    assert signer_a.key_id == signer_b.key_id
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes(signer_b.trusted_bundle)
    SnapshotStore(tmp_path / "snap.json", load_trusted_keys([trusted])).apply(
        signer_a.sign("n1", body(1))
    )
    # Session tokens signed by one are accepted by the other.
    principal = await TokenVerifier(b).verify(mint_dev_token(a, "p-ayu", ["asn"]))
    assert principal.subject == "p-ayu"
    # The OIDC sign-in cookie one replica sets is read by the other.
    oidc = {"oidc_issuer_url": "https://idp.invalid", "oidc_client_id": "ruang"}
    flow = Flow(state="s", verifier="v", next=None, redirect_uri="https://x/cb", expires=4e9)
    sealed = OidcClient(a.model_copy(update=oidc)).seal(flow)
    assert OidcClient(b.model_copy(update=oidc)).unseal(sealed) == flow

    # The failure this prevents: a development host makes its own secret and disagrees.
    dev = CloudSettings(
        environment="development",
        snapshot_key_path=tmp_path / "dev" / "snapshot-signing-key.pem",
        checkin_qr_secret_file=None,
        visitor_pass_secret_file=None,
    )
    assert not CheckinKeys.from_settings(dev).valid(
        "L1-D22", CheckinKeys.from_settings(a).key("L1-D22")
    )
    assert PassKeys.from_settings(dev).read(token) is None


def test_cloud_serve_in_production_without_keys_exits_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUANG_ENV", "production")
    monkeypatch.setenv("RUANG_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/db/ruang.sqlite3")
    assert main(["cloud", "serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "RUANG_SNAPSHOT_KEY_PATH" in err and "RUANG_CHECKIN_QR_SECRET" in err
    assert not (tmp_path / "var").exists()


def test_cli_writes_a_key_set_once_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "keys"
    assert main(["keys", "generate", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "RUANG_ENV=production" in out and "RUANG_CHECKIN_QR_SECRET_FILE=" in out
    written = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert set(written) == {
        "snapshot-signing-key.pem", "snapshot-signing-key.pub.pem", "token-signing-key.pem",
        "checkin-qr-secret", "visitor-pass-secret", "oidc-flow-secret", "pseudonym-secret",
        "cloud-keys.env",
    }  # fmt: skip
    for name in written:
        assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600
    assert main(["keys", "generate", "--dir", str(directory)]) == 2
    assert "not overwriting" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == written
    # The first step of a rotation: a new snapshot key pair only.
    assert main(["keys", "generate", "--dir", str(tmp_path / "next"), "--snapshot-only"]) == 0
    assert sorted(p.name for p in (tmp_path / "next").iterdir()) == [
        "cloud-keys.env", "snapshot-signing-key.pem", "snapshot-signing-key.pub.pem",
    ]  # fmt: skip
