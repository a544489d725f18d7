"""Reproducible tar archives of a directory: sorted entries, owner 0:0, one fixed mtime."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import SpecError


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            yield base / name


def write_tree(root: Path, out: BinaryIO, mtime: int, prefix: str = "", fmt: int = tarfile.PAX_FORMAT) -> None:
    """Write the tree under root (not root itself) to out, names prefixed with `prefix`."""
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for path in _walk(root):
            info = tar.gettarinfo(str(path), arcname=prefix + path.relative_to(root).as_posix())
            if not (info.isfile() or info.isdir() or info.issym()):
                raise SpecError(f"{path}: only files, directories and symlinks can be packed")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = mtime
            info.mode = stat.S_IMODE(info.mode)
            if info.isfile():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
