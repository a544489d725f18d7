"""What an install, rollback or config apply is asked to do, and what it did."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from signing.keys import VerifyKey

from .push import RegistrySink
from .targets.helm import HelmSettings


def space_margin() -> int:
    """Free space kept beyond what a bundle needs (SATCHEL_SPACE_MARGIN bytes, default 64 MiB)."""
    return int(os.environ.get("SATCHEL_SPACE_MARGIN", 64 << 20))


@dataclass(frozen=True)
class InstallOptions:
    keys: Sequence[VerifyKey] = ()
    registry: str | None = None          # an existing registry host[:port]; else the managed one
    registry_insecure: bool = False
    registry_ca: str | None = None
    allow_downgrade: bool = False
    replace_build: bool = False         # install a same-version bundle of other bytes
    wait_timeout: int = 120
    keep: int = 3
    project: str | None = None
    lock_wait: float = 0
    now: datetime | None = None
    target: str | None = None            # compose | helm; default: the bundle's, else from its contents
    helm: HelmSettings = field(default_factory=HelmSettings)
    render_only: Path | None = None      # write the rendered release there and stop before the switch
    settings: dict[str, str] = field(default_factory=dict)   # per-install setting overrides (compose)
    sink: RegistrySink | None = None     # tests: an in-memory registry in place of any real one
    with_data: bool = False              # rollback: bring back the target release's data snapshot too
    watch: int | None = None             # seconds to watch after the switch; None: the bundle's health policy


@dataclass
class Outcome:
    action: str                          # installed | already-installed | rolled-back
    version: str
    previous: str | None = None
    pushed_blobs: int = 0
    removed: list[str] = field(default_factory=list)
    app: str = ""
    repaired: int = 0                    # damaged or missing stored blobs put back from the bundle

