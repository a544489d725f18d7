"""Images from the local Docker engine: saved to a temporary archive, then read as one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..oci.refs import Reference
from ..tools.docker import save_image
from .archive import ArchiveSource


class DockerSource(ArchiveSource):
    def __init__(self, ref_text: str, ref: Reference, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=workdir, prefix="docker-save-", suffix=".tar")
        os.close(fd)
        self._path = Path(name)
        try:
            save_image(ref_text, self._path)
            super().__init__(self._path, ref, f"Docker engine image {ref_text}")
        except BaseException:
            self._path.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        super().close()
        self._path.unlink(missing_ok=True)
