"""Signing keys: generation, PEM files, key ids, raw sign/verify.

Key id = lowercase hex sha256 of the public key's DER SubjectPublicKeyInfo, so any tool
(openssl, cosign) can compute it from the `.pub` file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .errors import KeyFileError

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256"
KEY_TYPES = (ED25519, ECDSA_P256)

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def _algorithm(public: object) -> str:
    if isinstance(public, ed25519.Ed25519PublicKey):
        return ED25519
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        return ECDSA_P256
    raise KeyFileError("unsupported key type (use Ed25519 or ECDSA P-256)")


@dataclass(frozen=True)
class VerifyKey:
    """A public key the verifier may trust."""

    key: PublicKey
    algorithm: str
    keyid: str

    @classmethod
    def from_public(cls, public: PublicKey) -> VerifyKey:
        der = public.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(public, _algorithm(public), hashlib.sha256(der).hexdigest())

    @classmethod
    def from_pem(cls, data: bytes, *, origin: str = "public key") -> VerifyKey:
        try:
            public = serialization.load_pem_public_key(data)
        except ValueError:
            raise KeyFileError(f"{origin} is not a PEM public key") from None
        if not isinstance(public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise KeyFileError(f"{origin}: unsupported key type (use Ed25519 or ECDSA P-256)")
        return cls.from_public(public)

    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, data)
            else:
                self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    key: PrivateKey
    public: VerifyKey

    @classmethod
    def generate(cls, algorithm: str = ED25519) -> SigningKey:
        key: PrivateKey
        if algorithm == ED25519:
            key = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == ECDSA_P256:
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise KeyFileError(f"unknown key type {algorithm!r} (choose {', '.join(KEY_TYPES)})")
        return cls(key, VerifyKey.from_public(key.public_key()))

    @classmethod
    def from_pem(cls, data: bytes, *, origin: str = "private key") -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise KeyFileError(f"{origin} is encrypted; Satchel reads unencrypted keys (keep the file 0600)") from None
        except ValueError:
            # The library's own text names its internals and a FAQ URL: say what it is instead.
            what = "a PEM block that is not a private key" if b"-----BEGIN" in data else "not PEM at all"
            raise KeyFileError(f"{origin} is not an unencrypted PEM private key ({what}); "
                               "make one with satchel keygen") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyFileError(f"{origin}: unsupported key type (use Ed25519 or ECDSA P-256)")
        return cls(key, VerifyKey.from_public(key.public_key()))

    def pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        # RFC 6979 deterministic ECDSA keeps bundles reproducible with P-256 keys too.
        return self.key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror}") from None


def load_signing_key(path: Path) -> SigningKey:
    return SigningKey.from_pem(_read(path, "private key"), origin=str(path))


def load_verify_key(path: Path) -> VerifyKey:
    data = _read(path, "public key")
    if b"PRIVATE KEY" in data:
        raise KeyFileError(f"{path} is a private key; pass the .pub file")
    return VerifyKey.from_pem(data, origin=str(path))


def write_key_pair(key: SigningKey, out: Path) -> tuple[Path, Path]:
    """Write NAME.key (mode 0600, never overwritten) and NAME.pub."""
    private_path = out.with_name(out.name + ".key")
    public_path = out.with_name(out.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; choose another --out or remove it")
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.pem())
        public_path.write_bytes(key.public.pem())
    except OSError as exc:
        raise KeyFileError(f"cannot write key pair {out}: {exc.strerror}") from None
    return private_path, public_path
