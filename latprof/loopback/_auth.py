"""ADB authentication, device side: tokens, signatures and the ``adb_keys`` file.

A host proves it holds a key the device trusts by signing a random 20-byte token
(``AUTH TOKEN``) with PKCS#1 v1.5, treating the token as an already computed SHA-1
digest (adbd calls ``RSA_verify(NID_sha1, token, 20, ...)``). Trusted public keys
live one per line in ``/data/misc/adb/adb_keys``, each in Android's own format
(``libcrypto_utils/android_pubkey.c``): the base64 of a 524-byte little-endian
struct ``{uint32 modulus_size_words (=64); uint32 n0inv; uint8 n[256]; uint8 rr[256];
uint32 exponent}``, optionally followed by `` user@host``.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

__all__ = ["TOKEN_SIZE", "AndroidPublicKey", "KeyStore", "new_token", "parse_public_key", "encode_public_key"]

TOKEN_SIZE = 20
_MODULUS_BYTES = 256
_STRUCT = struct.Struct(f"<II{_MODULUS_BYTES}s{_MODULUS_BYTES}sI")  # 524 bytes


def new_token() -> bytes:
    """A fresh random ``AUTH TOKEN`` payload."""
    return secrets.token_bytes(TOKEN_SIZE)


@dataclass(frozen=True)
class AndroidPublicKey:
    """An RSA-2048 public key from an ``adb_keys`` line (or an ``AUTH RSAPUBLICKEY`` payload)."""

    n: int
    e: int
    comment: str
    line: str  # the base64 blob and comment, as stored in adb_keys

    def verify(self, token: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's PKCS#1 v1.5 signature of the token as a SHA-1 digest."""
        if len(token) != TOKEN_SIZE:
            return False
        key = rsa.RSAPublicNumbers(self.e, self.n).public_key()
        try:
            key.verify(signature, token, padding.PKCS1v15(), Prehashed(hashes.SHA1()))
        except (InvalidSignature, ValueError):
            return False
        return True


def parse_public_key(text: str | bytes) -> AndroidPublicKey:
    """Parse ``BASE64 [user@host]``; raises ValueError when it is not an Android RSA-2048 key."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip().rstrip("\0").strip()
    blob, _, comment = text.partition(" ")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public key is not base64") from None
    if len(raw) != _STRUCT.size:
        raise ValueError(f"public key is {len(raw)} bytes, not the {_STRUCT.size} of an Android RSA-2048 key")
    words, n0inv, modulus, rr, exponent = _STRUCT.unpack(raw)
    if words != _MODULUS_BYTES // 4:
        raise ValueError(f"public key has {words} modulus words, expected {_MODULUS_BYTES // 4}")
    n = int.from_bytes(modulus, "little")
    if n % 2 == 0 or n.bit_length() < 2000:
        raise ValueError("public key modulus is not an RSA-2048 modulus")
    if (n0inv * n) % (1 << 32) != (1 << 32) - 1:  # n0inv = -1 / n mod 2^32
        raise ValueError("public key n0inv does not match its modulus")
    if rr != pow(2, 2 * _MODULUS_BYTES * 8, n).to_bytes(_MODULUS_BYTES, "little"):
        raise ValueError("public key rr does not match its modulus")
    comment = comment.strip()
    return AndroidPublicKey(n=n, e=exponent, comment=comment, line=f"{blob} {comment}" if comment else blob)


def encode_public_key(public_key: rsa.RSAPublicKey, comment: str = "") -> str:
    """An RSA-2048 public key in adb's format (the inverse of :func:`parse_public_key`)."""
    numbers = public_key.public_numbers()
    n, e = numbers.n, numbers.e
    n0inv = (1 << 32) - pow(n % (1 << 32), -1, 1 << 32)
    rr = pow(2, 2 * _MODULUS_BYTES * 8, n)
    raw = _STRUCT.pack(
        _MODULUS_BYTES // 4, n0inv, n.to_bytes(_MODULUS_BYTES, "little"), rr.to_bytes(_MODULUS_BYTES, "little"), e,
    )
    blob = base64.b64encode(raw).decode("ascii")
    return f"{blob} {comment}" if comment else blob


class KeyStore:
    """The device's ``adb_keys``: the public keys it accepts signatures from.

    The file is re-read on every check, so keys added by hand (or by another
    connection accepting a new key) take effect at once, as on a phone.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def keys(self) -> list[AndroidPublicKey]:
        """The valid keys in the file; malformed lines are skipped as adbd does."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        keys = []
        for line in lines:
            if line.strip():
                try:
                    keys.append(parse_public_key(line))
                except ValueError:
                    continue
        return keys

    def verify(self, token: bytes, signature: bytes) -> AndroidPublicKey | None:
        """The trusted key that signed ``token``, or None."""
        return next((key for key in self.keys() if key.verify(token, signature)), None)

    def add(self, key: AndroidPublicKey) -> None:
        """Trust ``key`` from now on (appended to the file unless already there)."""
        with self._lock:
            if any(existing.n == key.n and existing.e == key.e for existing in self.keys()):
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(key.line + "\n")
            os.chmod(self.path, 0o640)
