"""Every image of the bundle has a variant for this host's architecture."""

from __future__ import annotations

import os
from collections.abc import Iterator

from .model import Context, Result

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def check(ctx: Context) -> Iterator[Result]:
    machine = os.uname().machine         # the engine runs on this kernel
    arch = _ARCH.get(machine, machine)
    for image in ctx.manifest.images:
        archs = sorted({p.split("/")[1] for p in image.platforms if p.count("/") >= 1})
        if not archs:
            continue          # a single image whose platform the build could not tell
        yield Result(f"architecture of {image.ref}", arch in archs, f"linux/{arch}", ", ".join(archs),
                     "use a bundle built for this host's architecture (satchel build --platform)")
