"""The managed local registry: a CNCF Distribution binary, data under the state root,
bound to 127.0.0.1, started detached so it outlives the command."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

from bundler.errors import EnvironmentProblem

DEFAULT_PORT = 5050


class ManagedRegistry:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.dir = directory
        port_file = directory / "port"
        if port_file.exists():
            self.port = int(port_file.read_text())
        else:
            self.port = port or int(os.environ.get("SATCHEL_REGISTRY_PORT") or DEFAULT_PORT)
        self.host = f"127.0.0.1:{self.port}"

    def _alive(self) -> bool:
        try:
            return requests.get(f"http://{self.host}/v2/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _pid(self) -> int | None:
        try:
            pid = int((self.dir / "pid").read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None

    def ensure_running(self) -> str:
        if self._pid() and self._alive():
            return self.host
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if not binary:
            raise EnvironmentProblem("no registry binary (apt-get install docker-registry), and no --registry given")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "port").write_text(str(self.port))
        config = self.dir / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n")
        with (self.dir / "registry.log").open("ab") as log:
            proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        (self.dir / "pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 15
        while not self._alive():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "registry.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise EnvironmentProblem(f"the local registry did not start on {self.host}: "
                                         f"{tail[0] if tail else 'no output'}")
            time.sleep(0.1)
        return self.host

    def stop(self) -> None:
        pid = self._pid()
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
