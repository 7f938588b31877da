import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from adapters.security.aes_gcm_cipher import AesGcmCipher, generate_master_key, parse_master_keys

K1 = os.urandom(32)
K2 = os.urandom(32)
CIPHER = AesGcmCipher([K1])
SECRET = "sk_live_" + "a1B2c3D4" * 4


@given(plaintext=st.text(), associated_data=st.text())
def test_round_trip(plaintext: str, associated_data: str) -> None:
    blob = CIPHER.encrypt(plaintext, associated_data)
    assert CIPHER.decrypt(blob, associated_data) == plaintext
    assert not CIPHER.needs_reencryption(blob)


def test_ciphertext_holds_no_copy_of_the_secret() -> None:
    assert len(SECRET) == 40
    blob = CIPHER.encrypt(SECRET, "ak_A")
    raw = SECRET.encode()
    copies = [raw, raw.hex().encode(), raw.hex().upper().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw)]
    assert not [copy for copy in copies if copy in blob]


def test_ciphertext_of_another_row_does_not_decrypt() -> None:
    assert CIPHER.decrypt(CIPHER.encrypt(SECRET, "ak_A"), "ak_B") is None


def test_same_plaintext_gives_distinct_ciphertexts() -> None:
    assert CIPHER.encrypt(SECRET, "ak_A") != CIPHER.encrypt(SECRET, "ak_A")


@given(data=st.data())
def test_any_flipped_byte_is_rejected(data: st.DataObject) -> None:
    blob = bytearray(CIPHER.encrypt(SECRET, "ak_A"))
    position = data.draw(st.integers(0, len(blob) - 1))
    blob[position] ^= data.draw(st.integers(1, 255))
    assert CIPHER.decrypt(bytes(blob), "ak_A") is None


def test_rotation() -> None:
    old_blob = AesGcmCipher([K1]).encrypt(SECRET, "ak_A")
    rotating = AesGcmCipher([K2, K1])
    assert rotating.decrypt(old_blob, "ak_A") == SECRET
    assert rotating.needs_reencryption(old_blob)

    new_blob = rotating.encrypt(SECRET, "ak_A")
    assert not rotating.needs_reencryption(new_blob)
    assert AesGcmCipher([K2]).decrypt(new_blob, "ak_A") == SECRET


def test_removed_key_no_longer_decrypts() -> None:
    assert AesGcmCipher([K2]).decrypt(CIPHER.encrypt(SECRET, "ak_A"), "ak_A") is None


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x01" * 36, b"\x02" + bytes(60), os.urandom(64)])
def test_garbage_is_rejected(blob: bytes) -> None:
    assert CIPHER.decrypt(blob, "ak_A") is None
    assert CIPHER.needs_reencryption(blob)


def test_wrong_version_is_rejected() -> None:
    blob = CIPHER.encrypt(SECRET, "ak_A")
    assert CIPHER.decrypt(b"\x02" + blob[1:], "ak_A") is None


def test_invalid_utf8_plaintext_is_rejected() -> None:
    blob = CIPHER.encrypt("x", "ak_A")
    header, nonce = blob[:9], blob[9:21]
    forged = header + nonce + AESGCM(K1).encrypt(nonce, b"\xff\xfe", b"ak_A")
    assert CIPHER.decrypt(forged, "ak_A") is None


@pytest.mark.parametrize("keys", [[], [os.urandom(16)], [K1, os.urandom(31)]])
def test_constructor_rejects_bad_keys(keys: list[bytes]) -> None:
    with pytest.raises(ValueError, match="master key"):
        AesGcmCipher(keys)


def test_parse_master_keys_accepts_padded_and_unpadded() -> None:
    padded = base64.urlsafe_b64encode(K1).decode()
    unpadded = base64.urlsafe_b64encode(K2).decode().rstrip("=")
    assert padded.endswith("=")
    assert parse_master_keys(f"{padded}, {unpadded}") == [K1, K2]


def test_generated_key_parses() -> None:
    key = generate_master_key()
    assert "=" not in key
    assert len(parse_master_keys(key)[0]) == 32


@pytest.mark.parametrize(
    "bad",
    [
        base64.urlsafe_b64encode(os.urandom(16)).decode(),
        base64.urlsafe_b64encode(os.urandom(33)).decode(),
        "not/base64+at-all!!" + "A" * 30,
        "A" * 41,
    ],
)
def test_parse_master_keys_names_the_bad_position_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError, match="#2") as error:
        parse_master_keys(f"{generate_master_key()},{bad}")
    assert bad[:8] not in str(error.value)


def test_parse_master_keys_rejects_empty_entries() -> None:
    for value, position in [("", "#1"), (" ", "#1"), (f"{generate_master_key()},", "#2")]:
        with pytest.raises(ValueError, match=position):
            parse_master_keys(value)
