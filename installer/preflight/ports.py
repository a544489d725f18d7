"""Every host port the compose files publish is free, or already this application's (its
current release, its colours or its front proxy publish it)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

from bundler.switching import published_ports
from bundler.tools import docker

from .model import Context, Result

STAGE = "content"


def _bindable(host_ip: str, port: int, proto: str) -> bool:
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # a closing connection is no owner
        try:
            sock.bind((host_ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check(ctx: Context) -> Iterator[Result]:
    wanted = sorted({(ip, published, proto, service) for service, spec in ctx.compose.items()
                     for ip, published, _, proto in published_ports(service, spec) if published is not None})
    if not wanted:
        return
    published = docker.published_ports()          # (port, proto) -> container names
    for ip, port, proto, service in wanted:
        holders = published.get((port, proto), [])
        foreign = [h for h in holders if not h.startswith(f"{ctx.project}-")]
        mine = [h for h in holders if h.startswith(f"{ctx.project}-")]
        try:
            free = _bindable(ip, port, proto) or bool(mine)
        except OSError as exc:
            free, foreign = False, [f"({exc.strerror})"]
        where = f"{ip or '*'}:{port}/{proto}"
        if foreign or not free:
            found = f"held by {', '.join(foreign)}" if foreign else "held by a process outside Docker"
            yield Result(f"port {where}", False, f"free for service {service}", found,
                         "stop what holds it, or change the port in the vendor's compose file")
        else:
            yield Result(f"port {where}", True, f"free for service {service}",
                         f"held by this application ({', '.join(mine)})" if mine else "free")


