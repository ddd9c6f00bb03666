import pytest
from cryptography.exceptions import InvalidTag

from cardcore.config import Settings
from cardcore.kit.crypto import MasterKeyError, generate_key_spec, load_keyring, parse_keys


def test_round_trip_bound_to_its_context() -> None:
    keyring = parse_keys(generate_key_spec("k1"))
    sealed = keyring.encrypt(b"jws_secret", "credential:crd_a")
    assert b"jws_secret" not in sealed
    assert keyring.decrypt(sealed, "credential:crd_a") == b"jws_secret"
    with pytest.raises(InvalidTag):
        keyring.decrypt(sealed, "credential:crd_b")


def test_rotation_keeps_old_ciphertexts_readable() -> None:
    old_spec = generate_key_spec("k1")
    sealed = parse_keys(old_spec).encrypt(b"x", "c")
    rotated = parse_keys(old_spec + "," + generate_key_spec("k2"))
    assert rotated.current == "k2"
    assert rotated.decrypt(sealed, "c") == b"x"
    with pytest.raises(MasterKeyError):
        parse_keys(generate_key_spec("k2")).decrypt(sealed, "c")


# The last spec is a well-formed 32-byte key with no name; it is fixed so that every pytest-xdist
# worker collects the same test ids.
@pytest.mark.parametrize("bad", ["", "k1", "k1:", "k1:c2hvcnQ=", ":" + "A" * 43 + "="])
def test_malformed_key_specs_are_refused(bad: str) -> None:
    with pytest.raises(MasterKeyError):
        parse_keys(bad)


def test_generated_key_file_is_private_and_stable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path)
    first = load_keyring(settings)
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert load_keyring(settings).keys == first.keys
