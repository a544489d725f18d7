"""The customer's state root: paths, lock, history, journal and the `current` switch.

    store/        verified blobs (OCI layout)      staging/   bundles being verified
    releases/V/   one complete release each        current -> releases/V
    history       append-only JSON lines           journal    the operation in progress
    trust/        trusted vendor keys              registry/  the managed local registry
    logs/         one log per run                  lock       one command at a time
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bundler.errors import EnvironmentProblem
from bundler.oci.layout import Layout, fsync_dir, write_atomic
from signing.grammar import utc_stamp

from .errors import LockHeld


def default_root() -> Path:
    env = os.environ.get("SATCHEL_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/satchel")
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "satchel"


@dataclass(frozen=True)
class Root:
    path: Path

    @property
    def store(self) -> Layout:
        """The content store; created on disk only when verified blobs are first promoted."""
        return Layout(self.path / "store")

    @property
    def releases(self) -> Path:
        return self.path / "releases"

    @property
    def staging(self) -> Path:
        return self.path / "staging"

    @property
    def trust(self) -> Path:
        return self.path / "trust"

    @property
    def registry_dir(self) -> Path:
        return self.path / "registry"

    def init(self) -> None:
        try:
            for d in (self.path, self.releases, self.staging, self.trust, self.path / "logs"):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot create state root {self.path}: {exc.strerror}") from None

    # -- lock ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, wait: float = 0) -> Iterator[None]:
        """Exclusive lock on the root; waits up to `wait` seconds, then LockHeld (exit 4)."""
        self.init()
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                        raise LockHeld(f"another satchel command (pid {holder}) is working on {self.path}; "
                                       "wait for it or pass --wait SECONDS") from None
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the lock; a killed process releases it too

    # -- current -------------------------------------------------------------------

    def current(self) -> str | None:
        try:
            target = os.readlink(self.path / "current")
        except FileNotFoundError:
            return None
        return Path(target).name

    def switch(self, version: str | None) -> None:
        """Point `current` at releases/VERSION (or remove it) atomically: temp link + rename."""
        link = self.path / "current"
        if version is None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
        else:
            tmp = self.path / f".current.{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(f"releases/{version}", tmp)
            os.replace(tmp, link)
        fsync_dir(self.path)

    # -- run logs ------------------------------------------------------------------------

    @contextlib.contextmanager
    def run_log(self, command: str) -> Iterator[Any]:
        """logs/<time>-<command>-<pid>.log: the steps of one run and how it ended."""
        self.init()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        with (self.path / "logs" / f"{stamp}-{command}-{os.getpid()}.log").open("a") as fh:

            def log(line: str) -> None:
                fh.write(f"{datetime.now(UTC).strftime('%H:%M:%S')} {line}\n")
                fh.flush()

            log(f"satchel {command} started (pid {os.getpid()})")
            try:
                yield log
            except BaseException as exc:
                log(f"failed: {type(exc).__name__}: {exc}")
                raise
            log("finished")

    # -- history and journal ---------------------------------------------------------

    def record(self, event: str, **fields: Any) -> None:
        entry = {"time": utc_stamp(), "event": event, **fields}
        with (self.path / "history").open("a") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def history(self) -> list[dict[str, Any]]:
        try:
            lines = (self.path / "history").read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):  # a torn last line after a crash
                out.append(json.loads(line))
        return out

    def journal(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.path / "journal").read_text()))
        except (FileNotFoundError, ValueError):
            return None

    def begin(self, **op: Any) -> None:
        write_atomic(self.path / "journal", json.dumps(op, sort_keys=True).encode())

    def end(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / "journal").unlink()
        fsync_dir(self.path)
