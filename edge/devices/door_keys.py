"""Sealing of OSDP secure channel base keys (SCBK) so the node config never holds them in clear.

Each door reader shares a 16-byte SCBK with the node. The config stores it only
as ``enc:v1:<base64url(nonce || AES-256-GCM ciphertext+tag)>``, encrypted under a
node key-encryption key (KEK) that lives outside the config: the file
``/etc/ruang/node.key`` (mode 0600, 32 random bytes as hex) or the environment
variable ``RUANG_NODE_KEY``. Copying the config (backups, support tickets,
git) therefore never leaks a reader key.

Technician workflow::

    python -m edge.devices.door_keys init                 # once per node, creates node.key
    python -m edge.devices.door_keys seal                 # prompts for the reader's SCBK hex
    # -> enc:v1:...   paste into the door's `scbk_sealed`
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import os
import re
import secrets
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCBK_LEN = 16
KEK_LEN = 32
NONCE_LEN = 12
SEALED_PREFIX = "enc:v1:"
DEFAULT_NODE_KEY_PATH = Path("/etc/ruang/node.key")
NODE_KEY_ENV = "RUANG_NODE_KEY"
# Binds the ciphertext to its purpose: a sealed SCBK cannot be replayed as some
# other secret sealed under the same KEK in a later format.
_AAD = b"ruang/osdp-scbk/v1"
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")

SEAL_HINT = (
    "seal it with `python -m edge.devices.door_keys seal` on the node "
    "(it reads the node key from /etc/ruang/node.key or RUANG_NODE_KEY) "
    "and put the printed enc:v1:... value in the config instead"
)


class DoorKeyError(ValueError):
    """A node key or sealed SCBK that cannot be used; the message says what to do."""


def looks_plain(value: str) -> bool:
    """True for a value that is plain hex (an unsealed key pasted into the config)."""
    compact = value.strip().replace(" ", "").replace(":", "")
    return bool(_HEX_RE.match(compact)) and len(compact) % 2 == 0


def check_sealed_form(value: str) -> str:
    """Validates the *form* of a config value (no KEK needed); used by config models."""
    if looks_plain(value):
        raise DoorKeyError(f"the SCBK is written in plain text in the config; {SEAL_HINT}")
    if not value.startswith(SEALED_PREFIX):
        raise DoorKeyError(f"a sealed SCBK must start with {SEALED_PREFIX!r}; {SEAL_HINT}")
    return value


def _parse_hex_key(text: str, length: int, what: str) -> bytes:
    compact = text.strip().replace(" ", "").replace(":", "")
    try:
        raw = bytes.fromhex(compact)
    except ValueError:
        raise DoorKeyError(f"{what} must be hex") from None
    if len(raw) != length:
        raise DoorKeyError(
            f"{what} must be {length} bytes ({2 * length} hex digits), got {len(raw)}"
        )
    return raw


def _check_kek(kek: bytes) -> None:
    if len(kek) != KEK_LEN:
        raise DoorKeyError(f"the node key must be {KEK_LEN} bytes, got {len(kek)}")


def seal_key(plain_hex: str, kek: bytes) -> str:
    """Encrypts a 16-byte SCBK given as hex into the ``enc:v1:...`` form for the config."""
    _check_kek(kek)
    scbk = _parse_hex_key(plain_hex, SCBK_LEN, "the SCBK")
    nonce = secrets.token_bytes(NONCE_LEN)
    blob = nonce + AESGCM(kek).encrypt(nonce, scbk, _AAD)
    return SEALED_PREFIX + base64.urlsafe_b64encode(blob).decode("ascii").rstrip("=")


def open_key(sealed: str, kek: bytes) -> bytes:
    """Decrypts a sealed SCBK; refuses plain keys and keys sealed under another node key."""
    _check_kek(kek)
    check_sealed_form(sealed)
    body = sealed[len(SEALED_PREFIX) :].strip()
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DoorKeyError("the sealed SCBK is not valid base64; re-seal the key") from None
    if len(blob) != NONCE_LEN + SCBK_LEN + 16:
        raise DoorKeyError("the sealed SCBK has the wrong length; re-seal the key")
    try:
        scbk = AESGCM(kek).decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], _AAD)
    except InvalidTag:
        raise DoorKeyError(
            "the sealed SCBK does not open with this node's key (sealed on another node, "
            "or the config was altered); re-seal it on this node"
        ) from None
    return scbk


def generate_node_key() -> bytes:
    return secrets.token_bytes(KEK_LEN)


def create_node_key_file(
    path: Path | str = DEFAULT_NODE_KEY_PATH, *, overwrite: bool = False
) -> bytes:
    """Creates the node KEK file with mode 0600 (directory 0700 if it has to be created).

    Refuses to replace an existing key unless `overwrite`: every SCBK sealed under
    the old key would become unreadable.
    """
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    kek = generate_node_key()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        # The mode is given at creation so the key is never readable by others, not
        # even between open() and a later chmod().
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise DoorKeyError(
            f"{path} already exists; keys sealed under it would be lost if it were replaced"
        ) from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(kek.hex() + "\n")
    return kek


def load_node_key(
    path: Path | str | None = None, *, environ: Mapping[str, str] | None = None
) -> bytes:
    """The node KEK: ``RUANG_NODE_KEY`` (hex) if set, else the file (/etc/ruang/node.key).

    A key file readable by group or others is refused, like ssh does for private keys.
    """
    env = os.environ if environ is None else environ
    if env.get(NODE_KEY_ENV):
        return _parse_hex_key(env[NODE_KEY_ENV], KEK_LEN, NODE_KEY_ENV)
    key_path = Path(path) if path is not None else DEFAULT_NODE_KEY_PATH
    try:
        mode = key_path.stat().st_mode
        text = key_path.read_text()
    except FileNotFoundError:
        raise DoorKeyError(
            f"node key {key_path} not found; create it with "
            f"`python -m edge.devices.door_keys init --path {key_path}` or set {NODE_KEY_ENV}"
        ) from None
    except OSError as exc:
        raise DoorKeyError(f"cannot read node key {key_path}: {exc.strerror or exc}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise DoorKeyError(
            f"node key {key_path} is readable by other users; run `chmod 600 {key_path}`"
        )
    return _parse_hex_key(text, KEK_LEN, f"node key {key_path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.devices.door_keys", description="Node key and SCBK sealing."
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    init = sub.add_parser("init", help="create the node key file (mode 0600)")
    init.add_argument("--path", type=Path, default=DEFAULT_NODE_KEY_PATH)
    seal = sub.add_parser("seal", help="seal a reader SCBK for the config")
    seal.add_argument("--key-file", type=Path, default=None, help="node key file")
    seal.add_argument(
        "--stdin", action="store_true", help="read the SCBK hex from stdin instead of prompting"
    )
    args = parser.parse_args(argv)
    try:
        if args.cmd == "init":
            create_node_key_file(args.path)
            print(f"created {args.path} (mode 0600); back it up offline")
            return 0
        kek = load_node_key(args.key_file)
        # Prompted without echo (or piped) so the plain key stays out of shell history.
        plain = sys.stdin.readline() if args.stdin else getpass.getpass("SCBK (32 hex digits): ")
        print(seal_key(plain, kek))
        return 0
    except DoorKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
