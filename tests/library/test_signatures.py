"""The per-key signature checks (jwtauth.signatures), held to cryptography's own verify.

RS256 is checked by recovering the PKCS#1 v1.5 block and comparing it with the expected
DigestInfo byte for byte, so these tests sign by hand (raw RSA with Python integers where
the block must be malformed on purpose) and demand the same answer ``key.verify`` gives.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OKPKey, RSAKey

from jwtauth.keys import SigningKey, load_public_jwk
from jwtauth.signatures import signature_check

from .kit import key_for, new_key

MESSAGE = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEifQ"
SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
SHA256_INFO_NO_NULL = bytes.fromhex("302f300b0609608648016503040201" "0420")
SHA512_INFO = bytes.fromhex("3051300d060960864801650304020305000440")


_RSA = key_for("RS256")  # module level: hypothesis reruns the test without fixtures


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return _RSA


def raw_rsa_sign(key: SigningKey, block: bytes) -> bytes:
    """s = m^d mod n over a hand-built block: no padding logic of any library involved."""
    numbers = key.jwk.private_key.private_numbers()  # type: ignore[union-attr]
    n, size = numbers.public_numbers.n, key.jwk.public_key.key_size // 8  # type: ignore[union-attr]
    return pow(int.from_bytes(block, "big"), numbers.d, n).to_bytes(size, "big")


def pkcs1_block(size: int, t: bytes, *, ff: int | None = None, tail: bytes = b"") -> bytes:
    ps = b"\xff" * (ff if ff is not None else size - len(t) - len(tail) - 3)
    return b"\x00\x01" + ps + b"\x00" + t + tail


def cryptography_says(key: SigningKey, message: bytes, signature: bytes) -> bool:
    try:
        key.jwk.public_key.verify(  # type: ignore[union-attr]
            signature, message, padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


def test_rs256_hand_built_block_verifies(rsa_key: SigningKey) -> None:
    size = rsa_key.jwk.public_key.key_size // 8  # type: ignore[union-attr]
    block = pkcs1_block(size, SHA256_INFO + hashlib.sha256(MESSAGE).digest())
    signature = raw_rsa_sign(rsa_key, block)
    assert cryptography_says(rsa_key, MESSAGE, signature)
    assert rsa_key.verify_signature(MESSAGE, signature)


@pytest.mark.parametrize(
    "case",
    ["sha512-digest-info", "digest-info-without-null", "garbage-after-hash",
     "short-padding", "block-type-2", "hash-of-other-message", "bare-hash"],
)
def test_rs256_malformed_block_refused_like_cryptography(rsa_key: SigningKey, case: str) -> None:
    size = rsa_key.jwk.public_key.key_size // 8  # type: ignore[union-attr]
    digest = hashlib.sha256(MESSAGE).digest()
    block = {
        "sha512-digest-info": pkcs1_block(size, SHA512_INFO + hashlib.sha512(MESSAGE).digest()),
        "digest-info-without-null": pkcs1_block(size, SHA256_INFO_NO_NULL + digest),
        # Bleichenbacher 2006: a parser that stops after the hash ignores what follows.
        "garbage-after-hash": pkcs1_block(
            size, SHA256_INFO + digest, ff=8, tail=b"\x42" * (size - 3 - 8 - 51)
        ),
        "short-padding": b"\x00\x01" + b"\xff" * 4 + b"\x00" + SHA256_INFO + digest,
        "block-type-2": b"\x00\x02" + pkcs1_block(size, SHA256_INFO + digest)[2:],
        "hash-of-other-message": pkcs1_block(size, SHA256_INFO + hashlib.sha256(b"x").digest()),
        "bare-hash": pkcs1_block(size, digest),
    }[case]
    signature = raw_rsa_sign(rsa_key, block.rjust(size, b"\x00"))
    assert not cryptography_says(rsa_key, MESSAGE, signature)
    assert not rsa_key.verify_signature(MESSAGE, signature)


def test_rs256_signature_of_wrong_length_refused(rsa_key: SigningKey) -> None:
    signature = rsa_key.jwk.private_key.sign(  # type: ignore[union-attr]
        MESSAGE, padding.PKCS1v15(), hashes.SHA256()
    )
    assert rsa_key.verify_signature(MESSAGE, signature)
    for odd in (b"\x00" + signature, signature[1:], signature + b"\x00", b"", signature[:128]):
        assert not rsa_key.verify_signature(MESSAGE, odd)


def test_rs256_pss_signature_refused(rsa_key: SigningKey) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = rsa_key.jwk.private_key.sign(MESSAGE, pss, hashes.SHA256())  # type: ignore[union-attr]
    assert not rsa_key.verify_signature(MESSAGE, signature)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255),
       in_signature=st.booleans())
def test_rs256_agrees_with_cryptography_on_any_one_byte_change(
    position: int, flip: int, in_signature: bool
) -> None:
    key = _RSA
    signature = key.jwk.private_key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    message = MESSAGE
    if in_signature:
        damaged = bytearray(signature)
        damaged[position % len(damaged)] ^= flip
        signature = bytes(damaged)
    else:
        damaged = bytearray(message)
        damaged[position % len(damaged)] ^= flip
        message = bytes(damaged)
    assert key.verify_signature(message, signature) is cryptography_says(key, message, signature)
    assert not key.verify_signature(message, signature)


def test_es256_takes_only_the_64_byte_jws_form() -> None:
    key = new_key("ES256")
    der = key.jwk.private_key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr]
    assert not key.verify_signature(MESSAGE, der)  # DER is what OpenSSL takes, not JWS
    assert not key.verify_signature(MESSAGE, bytes(64))
    assert not key.verify_signature(MESSAGE, b"\xff" * 64)  # r and s beyond the order


@pytest.mark.parametrize(
    ("alg", "jwk"),
    [
        ("ES256", RSAKey.generate_key(2048)),
        ("RS256", ECKey.generate_key("P-256")),
        ("EdDSA", ECKey.generate_key("P-256")),
        ("ES256", ECKey.generate_key("P-384")),
        ("EdDSA", OKPKey.generate_key("X25519")),
        ("HS256", RSAKey.generate_key(2048)),
        ("none", OKPKey.generate_key("Ed25519")),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_key_of_the_wrong_type_for_its_algorithm_never_verifies(alg: str, jwk: object) -> None:
    check = signature_check(alg, jwk)
    assert not check(MESSAGE, b"\x00" * 64)
    assert check.__name__ == "_never"


@pytest.mark.parametrize(
    "change", [{"use": "enc"}, {"key_ops": ["encrypt"]}, {"key_ops": "verify"}], ids=repr
)
def test_jwk_not_meant_for_signatures_is_refused(change: dict[str, object]) -> None:
    entry = {**new_key("ES256").public_jwk(), **change}
    with pytest.raises(ValueError, match=r"use|key_ops"):
        load_public_jwk(entry)
    assert load_public_jwk({**entry, "use": "sig", "key_ops": ["verify"]}).alg == "ES256"


def test_signature_check_of_an_unusable_jwk_never_verifies() -> None:
    # joserfc refuses get_op_key("verify") for such a key; the check must say no, not raise.
    entry = {k: v for k, v in new_key("ES256").public_jwk().items() if k != "use"}
    jwk = ECKey.import_key({**entry, "key_ops": ["encrypt"]})
    assert signature_check("ES256", jwk).__name__ == "_never"
