from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from installer.cli import main
from tests import images
from tests.infra import Registry, docker, docker_available

if TYPE_CHECKING:
    from tests.kitbox import KitBox

# Hostile bundles refused, by promise (filled by tests/test_hostile.py, printed at the end).
HOSTILE_COUNTS: Counter[str] = Counter()
# Crashes of the in-memory sweep, by operation, and the failure points they covered
# (filled by tests/test_state_machine.py).
CRASH_SWEEP: Counter[str] = Counter()
CRASH_POINTS: set[str] = set()
SUMMARY: list[str] = []          # lines a test leaves for the end of the run (numbers for the notes)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if CRASH_SWEEP:
        terminalreporter.write_line(
            f"in-memory crash sweep: {sum(CRASH_SWEEP.values())} crashes covering all {len(CRASH_POINTS)} failure "
            f"points ({', '.join(f'{op} {n}' for op, n in CRASH_SWEEP.items())}), each followed by a run that "
            "finished the job")
    if HOSTILE_COUNTS:
        counts = ", ".join(f"{promise} {n}" for promise, n in sorted(HOSTILE_COUNTS.items()))
        terminalreporter.write_line(f"hostile inputs refused, nothing changed that should not: {counts} "
                                    f"({sum(HOSTILE_COUNTS.values())} cases)")
    for line in SUMMARY:
        terminalreporter.write_line(line)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `satchel ARGS...` in-process, as a user would, and capture what it prints."""

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from signing.keys import SigningKey, write_key_pair

    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name, kind in (("vendor", "ed25519"), ("other", "ed25519"), ("ecdsa", "ecdsa-p256")):
        private, public = write_key_pair(SigningKey.generate(kind), d / name)
        out[name], out[name + ".pub"] = private, public
    return out


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("auth-registry"), user="vendor", password="s3cret-pw")
    yield reg
    reg.stop()


@dataclass(frozen=True)
class TestImages:
    layout: Path                 # OCI layout holding every test image, tagged
    registry: Registry


@pytest.fixture(scope="session")
def test_images(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> TestImages:
    """web:1.0 and worker:1.0 share the busybox layer; multi:1.0 is amd64 + arm64."""
    root = tmp_path_factory.mktemp("layout")
    w = images.LayoutWriter(root)
    base = images.busybox_layer()
    w.tag(w.image([base, images.app_layer("web 1.0")]), "web-1.0")
    w.tag(w.image([base, images.app_layer("worker 1.0")]), "worker-1.0")
    w.tag(w.image([base, images.app_layer("web 1.1")]), "web-1.1")
    w.tag(w.index([w.image([base, images.app_layer("multi amd64")], arch="amd64"),
                   w.image([base, images.app_layer("multi arm64")], arch="arm64")]), "multi-1.0")
    for tag, repo in (("web-1.0", "acme/web"), ("worker-1.0", "acme/worker"), ("web-1.1", "acme/web"),
                      ("multi-1.0", "acme/multi")):
        registry.push_layout(root, tag, repo)
    return TestImages(root, registry)


@pytest.fixture(scope="session")
def engine_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An image in the real Docker engine, made with `docker import` of a busybox rootfs."""
    docker_available()
    ref = f"satchel-test/engine:{os.getpid()}"   # per test run: another run may remove its own
    rootfs = images.tar_bytes({"bin/busybox": images.BUSYBOX.read_bytes(), "etc/engine": b"engine\n"})
    docker("import", "--change", 'CMD ["/bin/busybox","sleep","3600"]', "-", ref, input=rootfs)
    yield ref
    docker("rmi", "-f", ref)


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Path:
    """The customer kit, built once per run by scripts/build-kit.sh, SHA256SUMS signed."""
    from tests.kitbox import build_kit

    base = tmp_path_factory.mktemp("kit")
    return build_kit(base / "dist", base / "work", keys["vendor"])


@pytest.fixture(scope="session")
def kit_box(kit: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitBox]:
    """A bare container (busybox + glibc) that runs the kit, shared by the kit's tests."""
    from tests.kitbox import KitBox

    box = KitBox.start(kit, tmp_path_factory.getbasetemp(), f"satchel-test-kitbox-{os.getpid()}")
    yield box
    box.stop()


@pytest.fixture
def host(request: pytest.FixtureRequest, tmp_path, keys):
    """A customer host: its own state root, managed registry port and Compose project.
    Parametrized indirectly with "kit", Satchel runs through the kit in a bare container."""
    from tests.hosts import Host

    box = request.getfixturevalue("kit_box") if getattr(request, "param", "venv") == "kit" else None
    h = Host(tmp_path / "root", keys, box)
    yield h
    h.cleanup()


DATA = "data:\n  - volume: db\n"
DB_VOLUME = "volumes:\n  db:\n"            # the compose files' side of DATA


def _hook(phase: str, *command: str) -> str:
    return f"hooks:\n  {phase}: {{service: web, command: [{', '.join(command)}]}}\n"


@pytest.fixture(scope="session")
def data_bundles(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> dict[str, Path]:
    """For the dummy target (tests/dummy_target.py): 1.0.0 declares volume db; 1.1.0 migrates it
    (schema v2) before the switch and is watched for a second after it; 1.2.0 does the same (v3), then fails its health check (when
    the test breaks it); 1.3.0's migration itself fails."""
    from tests.hosts import make_bundle

    base = tmp_path_factory.mktemp("data-bundles")
    watch = "health: {watch: 1s, period: 1s, initial-delay: 0s, failure-threshold: 1}\n"
    extra = {"1.0.0": DATA, "1.1.0": DATA + watch + _hook("before-switch", "put", "db", "schema", "v2"),
             "1.2.0": DATA + _hook("before-switch", "put", "db", "schema", "v3"),
             "1.3.0": DATA + _hook("before-switch", "fail", "migration refused")}
    return {v: make_bundle(base / v, v, keys, spec_extra=e, compose_extra=DB_VOLUME) for v, e in extra.items()}


@pytest.fixture
def world(tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, Any]:
    """In memory: a state root, the dummy target (1.2.0 fails its health check) and install
    options that push to a registry in memory."""
    from installer import targets
    from installer.options import InstallOptions
    from installer.state import Host
    from signing.keys import load_verify_key
    from tests.dummy_target import DummyTarget, MemoryRegistry

    target = DummyTarget(tmp_path / "running", broken={"1.2.0"})
    monkeypatch.setitem(targets.REGISTERED, "dummy", target)
    opts = InstallOptions(keys=[load_verify_key(keys["vendor.pub"])], target="dummy", sink=MemoryRegistry(),
                          wait_timeout=5)
    return Host(tmp_path / "root"), target, opts


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave what a person may want to look at after the run (screens, screenshots):
    $SATCHEL_TEST_ARTIFACTS, else test-artifacts/ in the checkout."""
    return Path(os.environ.get("SATCHEL_TEST_ARTIFACTS") or Path(__file__).parent.parent / "test-artifacts")


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    def write(doc: dict, name: str = "satchel.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return write
