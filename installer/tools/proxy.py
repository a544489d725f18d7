"""The managed front proxy of a blue-green application: HAProxy (the kit's image, or one built
from the host's package; never fetched at install time) in a container that publishes the
application's routed ports and Docker restarts by itself. One per application.

Traffic moves by a seamless reload: the new configuration is checked by HAProxy itself, put in
place by a rename (so a proxy restarted at any moment reads the old or the new one, whole),
then the master process is told to reload. The listening sockets pass to the new worker
(`expose-fd listeners`), so no connection is refused; the old worker finishes the connections
it holds, for at most `hard-stop-after` (the drain time). Satchel talks to the master through
its CLI socket, in a directory shared with the host."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jinja2

from bundler.errors import EnvironmentProblem
from bundler.kit.rootfs import PROXY, ensure_image
from bundler.oci.layout import write_atomic
from bundler.tools import docker

CONFIG_DIR = "/etc/satchel-proxy"
RUN_DIR = "/run/satchel-proxy"


@dataclass(frozen=True)
class Listener:
    """One published port: where the host listens, and the containers that answer on it."""

    name: str                       # SERVICE-PORT
    mode: str                       # http | tcp
    host_ip: str                    # "" for every address
    port: int                       # published on the host, and bound by HAProxy in its container
    servers: tuple[str, ...]        # CONTAINER:PORT of the live colour


CONFIG = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, trim_blocks=True,
                            lstrip_blocks=True).from_string("""\
# Written by Satchel for {{ project }}; the live colour is {{ colour }}.
global
    master-worker
    stats socket {{ run }}/admin.sock mode 600 level admin expose-fd listeners
    hard-stop-after {{ drain }}s
    log stdout format short daemon notice

defaults
    log global
    option dontlognull
    timeout connect 5s
    timeout client 5m
    timeout server 5m
    timeout tunnel 1h
    default-server init-addr last,libc,none resolvers docker

resolvers docker
    nameserver dns 127.0.0.11:53
    hold valid 5s

{% for l in listeners %}
listen {{ l.name }}
    mode {{ l.mode }}
    bind :{{ l.port }}
{% if l.mode == "http" %}
    option forwardfor
    retry-on conn-failure empty-response response-timeout
{% endif %}
    retries 3
{% for s in l.servers %}
    server {{ colour }}{{ loop.index }} {{ s }}
{% endfor %}

{% endfor %}
""")


class FrontProxy:
    def __init__(self, directory: Path, project: str) -> None:
        self.dir = directory
        self.project = project
        self.container = f"{project}-satchel-proxy"
        # The engine publishes a container's ports through the network that holds its default
        # gateway, the first by name among equals: joining a network that sorts before it moves
        # the ports and refuses connections for a moment. So the proxy's own network sorts
        # before the colours' (PROJECT-blue_*, PROJECT-green_*).
        self.network = f"{project}-0-proxy"
        self.config = directory / "haproxy.cfg"

    # -- the container ---------------------------------------------------------

    def state(self) -> dict[str, object] | None:
        return docker.container_state(self.container)

    def _ports_label(self, listeners: list[Listener]) -> str:
        return json.dumps(sorted([x.host_ip, x.port] for x in listeners))

    def ensure(self, listeners: list[Listener]) -> None:
        """The proxy runs, publishing exactly these ports (recreated when they changed: its
        ports are fixed at creation)."""
        wanted = self._ports_label(listeners)
        state = self.state()
        if state is not None and docker.container_labels(self.container).get("io.satchel.ports") != wanted:
            docker.remove_container(self.container)
            state = None
        if state is None:
            (self.dir / "run").mkdir(parents=True, exist_ok=True)
            docker.ensure_network(self.network, {"io.satchel.proxy": self.project})
            docker.run_service(
                self.container, ensure_image(PROXY),
                [PROXY.binary, "-W", "-db", "-S", f"{RUN_DIR}/master.sock", "-f", f"{CONFIG_DIR}/haproxy.cfg"],
                {str(self.dir.resolve()): (CONFIG_DIR, "ro"), str((self.dir / "run").resolve()): (RUN_DIR, "rw")},
                {"io.satchel.role": "proxy", "io.satchel.project": self.project, "io.satchel.ports": wanted},
                network=self.network, ports={f"{x.port}/tcp": (x.host_ip or "0.0.0.0", x.port) for x in listeners})
        elif not state.get("Running"):
            docker.start_container(self.container)
        self._wait_master()

    def attach(self, network: str) -> None:
        docker.connect_network(network, self.container)

    def remove(self) -> None:
        docker.remove_container(self.container)
        docker.remove_network(self.network)

    # -- configuration and reload ---------------------------------------------

    def render(self, colour: str, listeners: list[Listener], drain: int) -> str:
        return CONFIG.render(project=self.project, colour=colour, listeners=[asdict(x) for x in listeners],
                             drain=max(drain, 1), run=RUN_DIR)

    def write_initial(self, text: str) -> None:
        """The configuration a new proxy container starts with."""
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config, text.encode())

    def routes(self) -> str | None:
        """The colour the configuration on disk routes to (what a restarted proxy serves)."""
        try:
            first = self.config.read_text().splitlines()[0]
        except (FileNotFoundError, IndexError):
            return None
        return first.rsplit(" ", 1)[-1].rstrip(".") if "live colour" in first else None

    def switch(self, text: str) -> None:
        """Check the configuration with HAProxy, put it in place, and reload seamlessly; returns
        once the new worker serves."""
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        candidate = self.dir / f"next-{digest}.cfg"
        write_atomic(candidate, text.encode())
        try:
            docker.exec_in(self.container, [PROXY.binary, "-c", "-q", "-f", f"{CONFIG_DIR}/{candidate.name}"])
        except EnvironmentProblem:
            candidate.unlink()
            raise
        candidate.replace(self.config)
        before = self._workers()
        self._master("reload")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(EnvironmentProblem):    # the master re-executes itself
                current, _ = self._workers()
                if current and current != before[0]:
                    return
            time.sleep(0.05)
        raise EnvironmentProblem(f"the front proxy {self.container} did not reload within 30s; "
                                 f"see docker logs {self.container}")

    def drain(self, timeout: float) -> bool:
        """Wait until the workers of earlier configurations have finished their connections
        (HAProxy ends them at hard-stop-after anyway): True if they did within the time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self._workers()[1]:
                    return True
            except EnvironmentProblem:
                return False
            time.sleep(0.1)
        return False

    # -- the master CLI ----------------------------------------------------------

    def _master(self, command: str) -> str:
        path = self.dir / "run" / "master.sock"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(str(path))
                sock.sendall(command.encode() + b"\n")
                chunks: list[bytes] = []
                # An answer ends with an empty line (the master keeps the connection open);
                # `reload` answers nothing and closes it.
                while not b"".join(chunks).endswith(b"\n\n") and (chunk := sock.recv(65536)):
                    chunks.append(chunk)
        except OSError as exc:
            raise EnvironmentProblem(f"the front proxy {self.container} does not answer ({exc}); "
                                     f"see docker logs {self.container}") from None
        return b"".join(chunks).decode(errors="replace")

    def _workers(self) -> tuple[str | None, list[str]]:
        """(pid of the current worker, pids of old workers still draining), from `show proc`."""
        current, old, section = None, [], ""
        for line in self._master("show proc").splitlines():
            if line.startswith("#"):
                section = line
                continue
            fields = line.split()
            if len(fields) >= 2 and fields[1] == "worker":
                if "old" in section:
                    old.append(fields[0])
                elif current is None:
                    current = fields[0]
        return current, old

    def _wait_master(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._workers()[0]:
                    return
            except EnvironmentProblem:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"the front proxy {self.container} did not start; "
                                         f"see docker logs {self.container}")
            time.sleep(0.05)
