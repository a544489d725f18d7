"""The customer's state: one host root shared by every application, and one directory per
application under it.

    store/        verified blobs of every app (OCI layout, deduplicated)
    staging/      bundles being verified          trust/     trusted vendor keys
    registry/     the managed local registry      kits/      kits replaced by self-upgrade
    logs/         one log per run                 lock       one command at a time
    history       host-level events (removals, migrations), append-only JSON lines
    apps/NAME/    one application:
        releases/V/   one complete release each   current -> releases/V
        history       its installs, switches, failures, rollbacks
        journal       its operation in progress   config/, secrets/, reports/
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

from bundler.errors import EnvironmentProblem, SpecError
from bundler.oci.layout import Layout, fsync_dir, write_atomic
from signing.grammar import APP_NAME, utc_stamp

from . import migration
from .errors import LockHeld


def default_root() -> Path:
    env = os.environ.get("SATCHEL_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/satchel")
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "satchel"


class _Events:
    """An append-only JSON-lines history file, fsynced per entry."""

    @property
    def history_file(self) -> Path:
        raise NotImplementedError

    def record(self, event: str, **fields: Any) -> None:
        entry = {"time": utc_stamp(), "event": event, **fields}
        self.history_file.parent.mkdir(parents=True, exist_ok=True)
        with self.history_file.open("a") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def history(self) -> list[dict[str, Any]]:
        try:
            lines = self.history_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):  # a torn last line after a crash
                out.append(json.loads(line))
        return out


@dataclass(frozen=True)
class Host(_Events):
    path: Path

    @property
    def store(self) -> Layout:
        """The content store; created on disk only when verified blobs are first promoted."""
        return Layout(self.path / "store")

    @property
    def staging(self) -> Path:
        return self.path / "staging"

    @property
    def trust(self) -> Path:
        return self.path / "trust"

    @property
    def registry_dir(self) -> Path:
        return self.path / "registry"

    @property
    def history_file(self) -> Path:
        return self.path / "history"

    def init(self) -> None:
        try:
            for d in (self.path, self.staging, self.trust):
                d.mkdir(mode=0o755, parents=True, exist_ok=True)   # trust/ must not be group-writable
            for d in (self.path / "apps", self.path / "logs"):
                # Releases, settings, reports and logs can hold configuration: not for other users.
                d.mkdir(mode=0o700, exist_ok=True)
                d.chmod(0o700)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot create state root {self.path}: {exc.strerror}") from None

    def app(self, name: str) -> App:
        if not APP_NAME.fullmatch(name):
            raise SpecError(f"{name!r} is not an application name (lower-case letters, digits and '-')")
        return App(self, name)

    def ready(self, wait: float = 30) -> None:
        """A root of the single-application layout is migrated on first use, under the lock."""
        if migration.pending(self):
            with self.lock(wait):
                pass

    def select(self, name: str | None, new: bool = False) -> App:
        """The application a command is about: the one named (with `new`, it may have nothing
        installed yet), else the host's only one. SpecError (exit 2) when that is ambiguous."""
        apps = self.apps()
        names = ", ".join(a.name for a in apps) or "none"
        if name is not None:
            app = self.app(name)
            if not new and app not in apps:
                raise SpecError(f"no application {name!r} on this host (installed: {names})")
            return app
        if len(apps) == 1:
            return apps[0]
        if not apps:
            raise SpecError("no application is installed on this host" + ("; name one with --app NAME" if new else ""))
        raise SpecError(f"this host runs {len(apps)} applications ({names}); choose one with --app NAME "
                        "or SATCHEL_APP")

    def apps(self) -> list[App]:
        """Applications with a release on this host, by name."""
        self.ready()
        base = self.path / "apps"
        names = sorted(p.name for p in base.iterdir() if APP_NAME.fullmatch(p.name)) if base.is_dir() else []
        return [App(self, n) for n in names if App(self, n).installed()]

    # -- lock ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, wait: float = 0) -> Iterator[None]:
        """Exclusive lock on the host root; waits up to `wait` seconds, then LockHeld (exit 4)."""
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
            migration.run(self)
            yield
        finally:
            os.close(fd)  # closing releases the lock; a killed process releases it too

    # -- run logs ------------------------------------------------------------------------

    @contextlib.contextmanager
    def run_log(self, command: str) -> Iterator[Any]:
        """logs/<time>-<command>-<pid>.log: the steps of one run and how it ended."""
        self.init()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.path / "logs" / f"{stamp}-{command}-{os.getpid()}.log"
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a") as fh:

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


@dataclass(frozen=True)
class App(_Events):
    """One application's part of the host root."""

    host: Host
    name: str

    @property
    def dir(self) -> Path:
        return self.host.path / "apps" / self.name

    @property
    def releases(self) -> Path:
        return self.dir / "releases"

    @property
    def reports(self) -> Path:
        return self.dir / "reports"

    @property
    def history_file(self) -> Path:
        return self.dir / "history"

    @property
    def store(self) -> Layout:
        return self.host.store

    def installed(self) -> bool:
        """Has a current release, a kept release or an operation in progress."""
        return self.current() is not None or (self.dir / "journal").exists() or any(
            p.name[0] != "." for p in (self.releases.iterdir() if self.releases.is_dir() else ()))

    def owned_dirs(self) -> list[Path]:
        """Where the compose files of this app's containers may live: its releases, and the
        releases of the single-app layout it may have been migrated from."""
        return [self.releases, self.host.path / "releases"]

    # -- current -------------------------------------------------------------------

    def current(self) -> str | None:
        try:
            target = os.readlink(self.dir / "current")
        except FileNotFoundError:
            return None
        return Path(target).name

    def switch(self, version: str | None) -> None:
        """Point `current` at releases/VERSION (or remove it) atomically: temp link + rename."""
        link = self.dir / "current"
        if version is None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
        else:
            tmp = self.dir / f".current.{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(f"releases/{version}", tmp)
            os.replace(tmp, link)
        fsync_dir(self.dir)

    # -- journal ---------------------------------------------------------------------

    def journal(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.dir / "journal").read_text()))
        except (FileNotFoundError, ValueError):
            return None

    def begin(self, **op: Any) -> None:
        write_atomic(self.dir / "journal", json.dumps(op, sort_keys=True).encode())

    def note(self, **fields: Any) -> None:
        """Add to the operation in progress what a re-run must know (a snapshot taken, say)."""
        write_atomic(self.dir / "journal", json.dumps({**(self.journal() or {}), **fields}, sort_keys=True).encode())

    def end(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "journal").unlink()
        fsync_dir(self.dir)
