"""The cloud's keys and secrets: given to every replica, created on first use only in development.

Each cloud replica must sign and check with the same keys, or a QR code printed
from one replica would be refused by the next, a visitor pass signed by one would
read as forged, and nodes would see snapshots from two different keys. So:

- in `production` (`RUANG_ENV=production`) every key comes from configuration,
  as a file path or a value, and a missing one is a start-up error that names its
  setting (`require_keys`, called first thing by the app's lifespan); nothing is
  ever generated on a host;
- in `development` (the default, what `make demo` runs) a key that is not
  configured is created on first use, 0600, next to `snapshot_key_path`, as before.

The keys: the snapshot signing key (EC P-256, `snapshot_key_path`), the token
signing key when no identity provider's JWKS is configured (`auth_dev_key_path`:
it signs the dashboards' session tokens and `ruang token`'s), the QR check-in
secret, the visitor pass secret, the badge pseudonym secret (`cloud/privacy/pseudonyms.py`),
and the OIDC flow cookie key when the OIDC client
has no secret of its own. Webhook secrets are per subscription and live in the
database every replica shares. `generate_key_set` writes a full set once for an
operator to distribute (`ruang keys generate --dir DIR`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from cloud.settings import CloudSettings
from ruang.private_files import write_private
from ruang.snapshot_keys import load_public_keys, public_pem

PRODUCTION = "production"
# Shortest secret accepted in production: 128 bits written as hex.
MIN_SECRET_CHARS = 32

CHECKIN_QR_SECRET = "checkin_qr_secret"
VISITOR_PASS_SECRET = "visitor_pass_secret"
OIDC_FLOW_SECRET = "oidc_flow_secret"
PSEUDONYM_SECRET = "pseudonym_secret"
# Development files of the secrets, next to snapshot_key_path (their names since 0.x).
DEV_FILES = {
    CHECKIN_QR_SECRET: "checkin-qr-secret",
    VISITOR_PASS_SECRET: "visitor-pass-secret",
    PSEUDONYM_SECRET: "pseudonym-secret",
}


class MissingKey(RuntimeError):
    """A key or secret the configuration must give; the message names each setting."""


def env_name(setting: str) -> str:
    return f"RUANG_{setting.upper()}"


def generates(settings: CloudSettings) -> bool:
    """Whether a missing key may be created here (development only)."""
    return settings.environment != PRODUCTION


_HOW = "create a key set once with `ruang keys generate --dir DIR` and give every replica the same"


# --- EC private keys (snapshot signing, token signing) ----------------------------------


def _load_ec(path: Path, setting: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise MissingKey(f"{env_name(setting)}: cannot read {path} as a PEM key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise MissingKey(f"{env_name(setting)}: {path} does not hold an EC private key")
    return key


def new_ec_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key written to `path` (0600, PKCS#8 PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(path, pem)
    return key


def ec_key(settings: CloudSettings, setting: str) -> ec.EllipticCurvePrivateKey:
    """The EC key in the file named by `setting`; created there only in development."""
    path: Path = getattr(settings, setting)
    if path.exists():
        return _load_ec(path, setting)
    if not generates(settings):
        raise MissingKey(
            f"{env_name(setting)}: {path} does not exist, and in production keys are not "
            f"generated; {_HOW} file"
        )
    return new_ec_key(path)


# --- shared secrets (HMAC keys) ----------------------------------------------------------


def _read_secret_file(path: Path, setting: str) -> bytes:
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise MissingKey(
            f"{env_name(setting)}_FILE: cannot read {path}: {exc.strerror or exc}"
        ) from None
    if not data:
        raise MissingKey(f"{env_name(setting)}_FILE: {path} is empty")
    return data


def configured_secret(settings: CloudSettings, setting: str) -> bytes | None:
    """The secret given as a value or a file (the value wins), None when neither is set."""
    value: SecretStr | None = getattr(settings, setting)
    if value is not None:
        secret = value.get_secret_value().encode()
    else:
        path: Path | None = getattr(settings, f"{setting}_file")
        if path is None:
            return None
        secret = _read_secret_file(path, setting)
    if not generates(settings) and len(secret) < MIN_SECRET_CHARS:
        raise MissingKey(
            f"{env_name(setting)}: shorter than {MIN_SECRET_CHARS} characters; "
            f"`ruang keys generate` writes one of 64"
        )
    return secret


def shared_secret(settings: CloudSettings, setting: str) -> bytes:
    """A configured secret; in development a missing one is created in its file."""
    secret = configured_secret(settings, setting)
    if secret is not None:
        return secret
    if not generates(settings):
        raise MissingKey(
            f"{env_name(setting)} or {env_name(setting)}_FILE must be set in production "
            f"(secrets are not generated per host); {_HOW} file"
        )
    path = settings.snapshot_key_path.with_name(DEV_FILES[setting])
    if not path.exists():
        write_private(path, secrets.token_hex(32).encode())
    return _read_secret_file(path, setting)


def new_secret() -> str:
    """A fresh secret as written to secret files: 256 random bits in hex."""
    return secrets.token_hex(32)


# --- snapshot public keys nodes trust during a rotation ---------------------------------


def extra_public_pems(settings: CloudSettings) -> list[bytes]:
    """The PEM of every key in `snapshot_extra_public_keys`, checked to be EC public keys."""
    pems: list[bytes] = []
    for path in settings.snapshot_extra_public_keys:
        setting = env_name("snapshot_extra_public_keys")
        try:
            keys = load_public_keys(path.read_bytes())
        except OSError as exc:
            raise MissingKey(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise MissingKey(f"{setting}: {path}: {exc}") from None
        pems.extend(public_pem(key) for key in keys)
    return pems


# --- the start-up check ------------------------------------------------------------------


def key_problems(settings: CloudSettings) -> list[str]:
    """What is missing or unreadable, one line per setting; empty when all is well.

    In development only explicitly named files are checked (the rest is created on
    first use); in production every key the running configuration needs.
    """
    problems: list[str] = []

    def check(load: Callable[..., object], *args: object) -> None:
        try:
            load(*args)
        except MissingKey as exc:
            problems.append(str(exc))

    production = not generates(settings)
    if production or settings.snapshot_key_path.exists():
        check(ec_key, settings, "snapshot_key_path")
    if settings.auth_jwks_url is None and (production or settings.auth_dev_key_path.exists()):
        check(ec_key, settings, "auth_dev_key_path")
    for setting in (CHECKIN_QR_SECRET, VISITOR_PASS_SECRET, PSEUDONYM_SECRET):
        check(shared_secret if production else configured_secret, settings, setting)
    check(configured_secret, settings, OIDC_FLOW_SECRET)
    if (
        production
        and settings.oidc_issuer_url
        and settings.oidc_client_id
        and settings.oidc_client_secret is None
        and settings.oidc_flow_secret is None
        and settings.oidc_flow_secret_file is None
    ):
        problems.append(
            f"{env_name(OIDC_FLOW_SECRET)} or {env_name(OIDC_FLOW_SECRET)}_FILE must be set in "
            "production for an OIDC client without a secret: every replica must read the "
            f"sign-in cookie another one set; {_HOW} file"
        )
    check(extra_public_pems, settings)
    return problems


def require_keys(settings: CloudSettings) -> None:
    """Stops start-up with every missing key named at once (production), never creates one."""
    problems = key_problems(settings)
    if problems:
        raise MissingKey(
            f"the cloud ({settings.environment}) cannot start, keys are missing:\n  - "
            + "\n  - ".join(problems)
        )


# --- a key set for an operator to distribute ---------------------------------------------


@dataclass(frozen=True)
class KeySet:
    """The files `generate_key_set` wrote, and the settings that point at them."""

    directory: Path
    files: dict[str, Path]
    env_file: Path

    @property
    def env(self) -> dict[str, str]:
        settings = {
            "snapshot_key": "RUANG_SNAPSHOT_KEY_PATH",
            "auth_key": "RUANG_AUTH_DEV_KEY_PATH",
            "checkin_qr_secret": "RUANG_CHECKIN_QR_SECRET_FILE",
            "visitor_pass_secret": "RUANG_VISITOR_PASS_SECRET_FILE",
            "oidc_flow_secret": "RUANG_OIDC_FLOW_SECRET_FILE",
            "pseudonym_secret": "RUANG_PSEUDONYM_SECRET_FILE",
        }
        return {"RUANG_ENV": PRODUCTION} | {
            env: str(self.files[name]) for name, env in settings.items() if name in self.files
        }


KEY_FILES = {
    "snapshot_key": "snapshot-signing-key.pem",
    "snapshot_public_key": "snapshot-signing-key.pub.pem",
    "auth_key": "token-signing-key.pem",
    "checkin_qr_secret": "checkin-qr-secret",
    "visitor_pass_secret": "visitor-pass-secret",
    "oidc_flow_secret": "oidc-flow-secret",
    "pseudonym_secret": "pseudonym-secret",
}
ENV_FILE = "cloud-keys.env"


def generate_key_set(directory: Path, *, snapshot_only: bool = False) -> KeySet:
    """Writes a full, fresh key set into `directory` (files 0600) and an env file naming them;
    `snapshot_only`: just a new snapshot key pair, the start of a rotation.

    Refuses to overwrite anything: replacing a key voids printed QR codes, sent
    visitor passes and nodes' trust, which must be a decision (a rotation), not
    the side effect of running a command twice.
    """
    directory = directory.resolve()
    names = ["snapshot_key", "snapshot_public_key"] if snapshot_only else list(KEY_FILES)
    files = {name: directory / KEY_FILES[name] for name in names}
    existing = [str(path) for path in [*files.values(), directory / ENV_FILE] if path.exists()]
    if existing:
        raise FileExistsError(f"not overwriting existing key files: {', '.join(existing)}")
    snapshot_key = new_ec_key(files["snapshot_key"])
    write_private(files["snapshot_public_key"], public_pem(snapshot_key.public_key()))
    if not snapshot_only:
        new_ec_key(files["auth_key"])
        for name in (n for n in KEY_FILES if n.endswith("_secret")):
            write_private(files[name], new_secret().encode())
    key_set = KeySet(directory, files, directory / ENV_FILE)
    lines = ["# Ruang cloud keys: the same files and settings on every replica."]
    lines += [f"{name}={value}" for name, value in key_set.env.items()]
    write_private(key_set.env_file, ("\n".join(lines) + "\n").encode())
    return key_set
