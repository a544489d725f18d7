"""What an operator sees: the screen of a real terminal (a pty, rendered by the pyte terminal
emulator) captured during the build and the install of a 300 MB image. Each byte-moving phase
must show a live bar with bytes and rate, and the health wait a line per service."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pexpect
import pyte

from tests import images
from tests.launch import RUN

SIZE = 300 << 20
ROWS, COLS = 40, 150
UNIT = r"(?:[kMG]?B|bytes)"
BAR = re.compile(rf"^(?P<label>[a-z][\w /.:-]*?)\s+[━╸╺ ]+\s+(?P<done>[\d.]+)/(?P<total>[\d.]+) {UNIT}\s+"
                 rf"(?P<rate>[\d.]+) {UNIT}/s", re.M)


def frames(argv: list[str], env: dict[str, str], artifact: Path, timeout: float = 600) -> list[str]:
    """Every state of the screen while the command runs (one per chunk of output it wrote)."""
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    child = pexpect.spawn(sys.executable, ["-c", RUN, *argv], dimensions=(ROWS, COLS), timeout=timeout,
                          env={**env, "TERM": "xterm-256color", "COLUMNS": str(COLS)})
    seen = []
    while True:
        try:
            stream.feed(child.read_nonblocking(1 << 16, timeout=timeout))
        except pexpect.EOF:
            break
        seen.append("\n".join(line.rstrip() for line in screen.display).rstrip())
    child.close()
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_text("\n\n----- frame -----\n".join(seen))
    assert child.exitstatus == 0, seen[-1]
    return seen


def live_bars(seen: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Label -> (done, total) of every frame that showed the bar with bytes done and a rate (a
    verify of 300 MB may take less than half a second: its bar may be caught only at its end)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for frame in seen:
        for m in BAR.finditer(frame):
            done, total = float(m["done"]), float(m["total"])
            if 0 < done <= total and float(m["rate"]) > 0:
                out.setdefault(m["label"].strip(), []).append((done, total))
    return out


def test_build_and_install_show_bytes_rate_and_every_service(host, keys, registry, tmp_path, artifacts):
    layout = images.LayoutWriter(tmp_path / "layout")
    big = images.random_layer(tmp_path / "big.tar", SIZE, {"www/index.html": b"hello 1.0.0\n"})
    layout.tag(layout.image([images.busybox_layer(), big], gz=False), "1")
    registry.push_layout(tmp_path / "layout", "1", "acme/big")
    ref = f"{registry.host}/acme/big:1"
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        f"  web:\n    image: {ref}\n"
        # Healthy only after a few seconds: the wait is long enough to be seen.
        '    command: ["/bin/busybox", "sh", "-c", "sleep 4; exec /bin/busybox httpd -f -p 8080 -h /www"]\n'
        '    healthcheck:\n      test: ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", '
        '"http://127.0.0.1:8080/"]\n      interval: 1s\n      start_period: 30s\n      retries: 3\n'
        f"  worker:\n    image: {ref}\n    command: [\"/bin/busybox\", \"sleep\", \"3600\"]\n")
    (tmp_path / "satchel.yaml").write_text(
        f"name: hello\nversion: 1.0.0\ncompose: [compose.yaml]\nimages:\n  - {ref}\n")
    bundle = tmp_path / "big.bundle"

    built = frames(["build", str(tmp_path / "satchel.yaml"), "-o", str(bundle), "--key", str(keys["vendor"]),
                    "--cache", str(tmp_path / "cache")], host.env, artifacts / "terminal" / "build.txt")
    bars = live_bars(built)
    assert {"pulling", "writing"} <= set(bars), bars.keys()

    installed = frames(["install", str(bundle), "--key", str(keys["vendor.pub"]), "--project", host.project,
                        "--timeout", "60"], host.env, artifacts / "terminal" / "install.txt")
    bars |= live_bars(installed)
    assert "verifying" in bars and any(label.startswith("pushing") for label in bars), bars.keys()
    # The health wait: a line per service under the spinner, web still starting while worker runs.
    assert any(re.search(r"^\S?\s+web: starting", f, re.M) and re.search(r"^\S?\s+worker: running", f, re.M)
               for f in installed), "no frame showed each service's state during the health wait"
    assert host.served_version() == "hello 1.0.0"
