"""SCBK sealing: keys round-trip under the node key, plain or foreign keys are refused clearly."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edge.devices.door_keys import (
    NODE_KEY_ENV,
    DoorKeyError,
    create_node_key_file,
    generate_node_key,
    load_node_key,
    main,
    open_key,
    seal_key,
)

SCBK_HEX = "00112233445566778899AABBCCDDEEFF"


def test_sealed_key_opens_to_the_original_bytes_and_does_not_contain_them() -> None:
    kek = generate_node_key()
    sealed = seal_key(SCBK_HEX, kek)
    assert sealed.startswith("enc:v1:")
    assert SCBK_HEX.lower() not in sealed.lower()
    assert open_key(sealed, kek) == bytes.fromhex(SCBK_HEX)


def test_sealing_twice_gives_different_ciphertexts() -> None:
    kek = generate_node_key()
    assert seal_key(SCBK_HEX, kek) != seal_key(SCBK_HEX, kek)


def test_key_sealed_on_another_node_is_refused() -> None:
    sealed = seal_key(SCBK_HEX, generate_node_key())
    with pytest.raises(DoorKeyError, match="another node"):
        open_key(sealed, generate_node_key())


def test_altered_sealed_key_is_refused() -> None:
    kek = generate_node_key()
    sealed = seal_key(SCBK_HEX, kek)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(DoorKeyError):
        open_key(flipped, kek)


def test_plain_hex_in_the_config_is_refused_with_sealing_instructions() -> None:
    with pytest.raises(DoorKeyError, match=r"plain text.*door_keys seal"):
        open_key(SCBK_HEX, generate_node_key())


def test_seal_refuses_keys_that_are_not_16_bytes() -> None:
    with pytest.raises(DoorKeyError, match="16 bytes"):
        seal_key("0011", generate_node_key())


def test_node_key_file_is_created_private_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "node.key"
    kek = create_node_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_node_key(path, environ={}) == kek


def test_existing_node_key_file_is_never_silently_replaced(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    create_node_key_file(path)
    with pytest.raises(DoorKeyError, match="already exists"):
        create_node_key_file(path)


def test_node_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    create_node_key_file(path)
    path.chmod(0o644)
    with pytest.raises(DoorKeyError, match="chmod 600"):
        load_node_key(path, environ={})


def test_environment_node_key_takes_precedence_over_the_file(tmp_path: Path) -> None:
    kek = generate_node_key()
    assert load_node_key(tmp_path / "missing", environ={NODE_KEY_ENV: kek.hex()}) == kek


def test_missing_node_key_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(DoorKeyError, match="door_keys init"):
        load_node_key(tmp_path / "missing", environ={})


def test_cli_seals_a_key_read_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "node.key"
    assert main(["init", "--path", str(path)]) == 0
    monkeypatch.delenv(NODE_KEY_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(SCBK_HEX + "\n"))
    capsys.readouterr()
    assert main(["seal", "--key-file", str(path), "--stdin"]) == 0
    sealed = capsys.readouterr().out.strip()
    assert open_key(sealed, load_node_key(path, environ={})) == bytes.fromhex(SCBK_HEX)
