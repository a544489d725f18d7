"""A software bill of materials for every image: made by Syft at build time as CycloneDX JSON,
normalised so that builds stay byte-reproducible, stored as a blob that the signed manifest
pins (so an SBOM is as trusted as its image), read back as package lists and compared.

Normalised: the time is the bundle's creation time, the serial number and the image's own
component are derived from the image (Syft would put a random UUID, the clock and a temporary
path there), and the JSON is canonical."""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signing import canonical
from signing.keys import VerifyKey

from .errors import BundleError
from .oci.digest import is_digest
from .oci.layout import OCI_LAYOUT, Layout
from .oci.model import OCI_INDEX, Descriptor, parse_json
from .tools import syft

if TYPE_CHECKING:
    from .manifest import BundleManifest

MEDIA_TYPE = "application/vnd.cyclonedx+json"
MAX_SBOM_BYTES = 64 << 20


@dataclass(frozen=True)
class Sbom:
    image: str          # the image's reference
    platform: str       # os/arch of the image manifest it describes
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "platform": self.platform, "digest": self.digest, "size": self.size}

    @classmethod
    def from_json(cls, doc: Any) -> Sbom:
        if not (isinstance(doc, dict) and set(doc) == {"image", "platform", "digest", "size"}
                and all(isinstance(doc[k], str) for k in ("image", "platform", "digest"))
                and isinstance(doc["size"], int) and not isinstance(doc["size"], bool) and is_digest(doc["digest"])):
            raise ValueError("an sbom entry is {image, platform, digest (sha256), size}")
        return cls(doc["image"], doc["platform"], doc["digest"], doc["size"])


def _platform_manifests(store: Layout, root: Descriptor, platforms: tuple[str, ...]) -> Iterator[
        tuple[str, Descriptor]]:
    """(os/arch, image manifest) of each platform the bundle carries of the image."""
    if root.media_type not in (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"):
        yield (platforms[0] if platforms else "unknown"), root
        return
    for entry in parse_json(store.read_small(root, 4 << 20), "index").get("manifests") or []:
        desc = Descriptor.from_json(entry, "index")
        plat = entry.get("platform") or {}
        name = f"{plat.get('os', 'unknown')}/{plat.get('architecture', 'unknown')}"
        if store.has(desc) and name != "unknown/unknown":
            yield name, desc


def normalise(raw: bytes, ref: str, manifest_digest: str, created: str) -> bytes:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise BundleError(f"syft wrote no JSON for {ref}") from None
    meta = doc.setdefault("metadata", {})
    meta["timestamp"] = created
    meta["component"] = {"bom-ref": hashlib.sha256(f"{ref}@{manifest_digest}".encode()).hexdigest()[:16],
                         "type": "container", "name": ref, "version": manifest_digest}
    doc.pop("serialNumber", None)
    doc["serialNumber"] = f"urn:uuid:{uuid.UUID(bytes=hashlib.sha256(canonical.dumps(doc)).digest()[:16])}"
    return canonical.dumps(doc)


def generate(store: Layout, ref: str, root: Descriptor, platforms: tuple[str, ...],
             created: str) -> list[tuple[str, bytes]]:
    """(platform, normalised CycloneDX JSON) for each platform of the image: Syft reads a
    one-image OCI layout whose blobs are the store's."""
    out = []
    for platform, manifest in _platform_manifests(store, root, platforms):
        with tempfile.TemporaryDirectory(prefix="satchel-sbom-") as tmp:
            layout = Path(tmp)
            (layout / "oci-layout").write_bytes(OCI_LAYOUT)
            (layout / "index.json").write_bytes(canonical.dumps(
                {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifest.to_json()]}))
            (layout / "blobs").symlink_to(store.root.resolve() / "blobs")
            out.append((platform, normalise(syft.cyclonedx(layout), ref, manifest.digest, created)))
    return out


def packages(sbom: bytes) -> list[dict[str, str]]:
    """Each component of an SBOM: name, version, type (deb, python, go-module, ...), licence."""
    doc = json.loads(sbom)
    out = []
    for c in doc.get("components") or []:
        if c.get("type") in ("operating-system", "file"):
            continue
        kind = next((p.get("value", "") for p in c.get("properties") or []
                     if p.get("name") == "syft:package:type"), c.get("type", ""))
        licences = [(lic.get("license") or {}).get("id") or (lic.get("license") or {}).get("name")
                    or lic.get("expression") for lic in c.get("licenses") or []]
        out.append({"name": str(c.get("name", "")), "version": str(c.get("version", "")), "type": str(kind),
                    "licence": ", ".join(sorted({str(x) for x in licences if x}))})
    return sorted(out, key=lambda p: (p["type"], p["name"], p["version"]))


def diff(old: list[dict[str, str]], new: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """What an upgrade adds, removes and changes (by package type and name)."""
    before = {(p["type"], p["name"]): p for p in old}
    after = {(p["type"], p["name"]): p for p in new}
    return {"added": [after[k] for k in sorted(after.keys() - before.keys())],
            "removed": [before[k] for k in sorted(before.keys() - after.keys())],
            "changed": [{**after[k], "from": before[k]["version"]} for k in sorted(after.keys() & before.keys())
                        if after[k]["version"] != before[k]["version"]]}


def from_bundle(path: Path, authorize: Callable[[bytes, bytes], BundleManifest],
                keys: Sequence[VerifyKey] | None = None) -> tuple[BundleManifest, dict[Sbom, bytes]]:
    """Read a whole bundle (every member hash-checked; `authorize` judges its signature) and
    keep its SBOMs."""
    from .verify import read_keeping

    manifest, kept = read_keeping(path, authorize, lambda m: {s.digest for s in m.sboms}, keys, MAX_SBOM_BYTES)
    return manifest, {s: kept[s.digest] for s in manifest.sboms if s.digest in kept}
