"""`satchel verify-kit`: is this kit file the one the vendor signed? The same check works with
plain tools (docs/KIT.md): `openssl pkeyutl -verify` over SHA256SUMS, then `sha256sum -c`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from signing.errors import BadSignatureError, UnsignedError
from signing.keys import VerifyKey

from ..errors import BundleError, SpecError
from ..oci.digest import file_digest, hex_of
from . import kitfile

MAX_SUMS = 64 << 10


def _read_small(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SUMS + 1)
    except OSError as exc:
        raise SpecError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > MAX_SUMS:
        raise BundleError(f"{path} is larger than {MAX_SUMS} bytes; it is not a SHA256SUMS file")
    return data


def verify_kit(kit: Path, keys: Sequence[VerifyKey], sums: Path | None = None) -> dict[str, Any]:
    """Signature over SHA256SUMS by a given key, then the kit's sha256 against its line."""
    sums = sums or kit.parent / "SHA256SUMS"
    data = _read_small(sums, "checksum file")
    signatures = sorted(sums.parent.glob(sums.name + "*.sig"))
    if not signatures:
        raise UnsignedError(f"no signature next to {sums} ({sums.name}.sig); ask the vendor for it")
    signer = next((k.keyid for s in signatures for k in keys if k.verify(_read_small(s, "signature"), data)), None)
    if signer is None:
        raise BadSignatureError(f"{sums} is not signed by the given key(s): do not run this kit")
    wanted = None
    for line in data.decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if name.lstrip("*") == kit.name:
            wanted = digest.strip()
    if wanted is None:
        raise BundleError(f"{sums} has no line for {kit.name} (renamed? keep the vendor's file name)")
    actual = hex_of(file_digest(kit))
    if actual != wanted:
        raise BundleError(f"{kit} does not match {sums.name} (sha256 {actual[:16]}…, signed {wanted[:16]}…): "
                          "the copy is damaged or altered; copy it again")
    meta = kitfile.read_meta(kit)
    return {"kit": str(kit), "version": meta["version"], "platform": meta["platform"], "sha256": actual,
            "signer": signer, "components": meta["components"]}
