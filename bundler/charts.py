"""Helm charts as OCI artifacts (Helm's media types), so `helm pull oci://` works later."""

from __future__ import annotations

import gzip
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .discover import chart_metadata
from .errors import SpecError
from .oci.layout import Layout
from .oci.model import HELM_CHART, HELM_CONFIG, OCI_MANIFEST, Descriptor
from .reprotar import write_tree


@dataclass(frozen=True)
class PackedChart:
    name: str
    version: str
    manifest: Descriptor
    blobs: tuple[Descriptor, ...]


def pack_chart(chart: Path, store: Layout, mtime: int) -> PackedChart:
    """Store a chart directory (packed reproducibly) or a .tgz as a Helm OCI artifact."""
    meta = chart_metadata(chart)
    if chart.is_dir():
        with tempfile.TemporaryFile() as tmp:
            with gzip.GzipFile(fileobj=tmp, mode="wb", mtime=0, filename="") as gz:
                write_tree(chart, gz, mtime, prefix=f"{meta['name']}/")  # type: ignore[arg-type]
            tmp.seek(0)
            layer = store.ingest(tmp)
    else:
        try:
            with chart.open("rb") as fh:
                layer = store.ingest(fh)
        except OSError as exc:
            raise SpecError(f"cannot read chart {chart}: {exc.strerror}") from None
    layer = Descriptor(HELM_CHART, layer.digest, layer.size)
    config = store.put_bytes(HELM_CONFIG, json.dumps(meta, sort_keys=True, default=str).encode())
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.to_json(),
                "layers": [layer.to_json()]}
    root = store.put_bytes(OCI_MANIFEST, json.dumps(manifest, sort_keys=True).encode())
    return PackedChart(str(meta["name"]), str(meta["version"]), root, (root, config, layer))
