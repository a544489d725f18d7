"""The signatures document: detached signatures over the exact payload bytes.

    {"signatures":[{"alg":"ed25519","keyid":"<64 hex>","sig":"<base64>"}]}

canonical JSON (see `canonical`), so it is itself reproducible.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from . import canonical
from .errors import MalformedError
from .grammar import KEY_ID
from .keys import KEY_TYPES, SigningKey

MAX_SIGNATURES = 16


@dataclass(frozen=True)
class Signature:
    keyid: str
    algorithm: str
    value: bytes


def sign(payload: bytes, keys: Sequence[SigningKey]) -> bytes:
    entries = [{"alg": k.public.algorithm, "keyid": k.public.keyid,
                "sig": base64.b64encode(k.sign(payload)).decode("ascii")} for k in keys]
    entries.sort(key=lambda e: e["keyid"])
    return canonical.dumps({"signatures": entries})


def parse(document: bytes) -> list[Signature]:
    doc = canonical.loads(document, what="signatures")
    if not isinstance(doc, dict) or set(doc) != {"signatures"} or not isinstance(doc["signatures"], list):
        raise MalformedError('signatures: expected {"signatures": [...]}')
    entries = doc["signatures"]
    if len(entries) > MAX_SIGNATURES:
        raise MalformedError(f"signatures: more than {MAX_SIGNATURES} entries")
    out: list[Signature] = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"alg", "keyid", "sig"}:
            raise MalformedError("signatures: each entry needs exactly alg, keyid and sig")
        keyid, alg, sig = entry["keyid"], entry["alg"], entry["sig"]
        if not isinstance(keyid, str) or not KEY_ID.fullmatch(keyid):
            raise MalformedError("signatures: keyid must be 64 lowercase hex digits")
        if alg not in KEY_TYPES:
            raise MalformedError(f"signatures: unknown algorithm {alg!r}")
        try:
            value = base64.b64decode(sig, validate=True) if isinstance(sig, str) else None
        except binascii.Error:
            value = None
        if not value:
            raise MalformedError(f"signatures: signature of key {keyid[:12]} is not base64")
        out.append(Signature(keyid, alg, value))
    if len({s.keyid for s in out}) != len(out):
        raise MalformedError("signatures: the same key signed twice")
    return out
