"""Real components for tests: a CNCF Distribution registry, skopeo, the Docker engine."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import bcrypt
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    """`docker-registry serve` on 127.0.0.1, optionally with htpasswd basic auth."""

    def __init__(self, root: Path, user: str | None = None, password: str | None = None,
                 extra_config: str = "", tls: tuple[Path, Path] | None = None) -> None:
        """`extra_config` is appended to the YAML config (e.g. an auth section); `tls` is
        (certificate, key) to serve HTTPS."""
        self.root, self.user, self.password = root, user, password
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        auth = extra_config
        if user and password and not extra_config:
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
            (root / "htpasswd").write_text(f"{user}:{hashed}\n")
            auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {root / 'htpasswd'}\n"
        (root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: test-secret\n"
            + (f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else "") + auth)
        binary = shutil.which("docker-registry") or shutil.which("registry")
        assert binary, "docker-registry is not installed (apt-get install docker-registry)"
        self.log = (root / "registry.log").open("wb")
        self.proc = subprocess.Popen([binary, "serve", str(root / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        scheme, verify = ("https", str(tls[0])) if tls else ("http", True)
        while True:
            try:
                if requests.get(f"{scheme}://{self.host}/v2/", timeout=1, verify=verify).status_code in (200, 401):
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"registry did not start: {(root / 'registry.log').read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def push_layout(self, layout: Path, tag: str, repo: str) -> None:
        """skopeo copy --all oci:LAYOUT:TAG docker://HOST/REPO:TAG."""
        cmd = ["skopeo", "copy", "--all", "--quiet", "--dest-tls-verify=false",
               f"oci:{layout}:{tag}", f"docker://{self.host}/{repo}:{tag}"]
        if self.user and self.password:
            cmd[3:3] = ["--dest-creds", f"{self.user}:{self.password}"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def docker_available() -> None:
    """Fail (not skip) when the Docker engine is missing: these tests are the promise."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return
    if os.geteuid() == 0 and shutil.which("dockerd"):
        subprocess.Popen(["dockerd"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        for _ in range(60):
            time.sleep(0.5)
            if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
                return
    raise RuntimeError("the Docker engine is not running; start dockerd (see README)")


def docker(*args: str, input: bytes | None = None) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, input=input, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr.decode()}")
    return proc.stdout.decode()
