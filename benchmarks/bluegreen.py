"""Blue-green next to recreate, in one run: the latency the front proxy adds, and the time of an
upgrade.

Two installs of the same web application (busybox httpd): one with the default recreate
strategy, its port published by the engine as usual (direct access), one blue-green, its port
published by the managed HAProxy. A client sends GET / on a new connection at a fixed rate
(50 and 500 requests a second, `--seconds` each) to each; p50/p99 latency, failures and the
rate reached are printed. Then `--runs` upgrades 1.0.0 -> 1.1.0 (and rollbacks) of each are timed.

Usage: python benchmarks/bluegreen.py [--seconds 10] [--runs 3]. Never asserts.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT  # noqa: F401  (puts the repository on the path)

from signing.keys import SigningKey, write_key_pair
from tests.hosts import Host, make_bundle
from tests.infra import free_port

BLUE_GREEN = "switch:\n  strategy: blue-green\n  drain: 2s\n  routes: {web: http}\n  singletons: {worker: stop-first}\n"


def load(port: int, rate: int, seconds: float, threads: int = 8) -> tuple[list[float], int, float]:
    """Latencies (s) of the answered requests, failures, requests a second reached."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    start = time.monotonic() + 0.2

    def worker(k: int) -> None:
        interval = threads / rate
        at = start + k * interval / threads
        mine, failed = [], 0
        while at < start + seconds:
            time.sleep(max(0.0, at - time.monotonic()))
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                conn.close()
                mine.append(time.perf_counter() - t0) if resp.status == 200 else None
                failed += resp.status != 200
            except OSError:
                failed += 1
            at += interval
        with lock:
            latencies.extend(mine)
            failures[0] += failed

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies, failures[0], (len(latencies) + failures[0]) / (time.monotonic() - start)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def timed(host: Host, *args: str | Path) -> float:
    t0 = time.perf_counter()
    res = host.run(*args, "--key", host.key, "--project", host.project, "--timeout", "60") if args[0] == "install" \
        else host.run(*args)
    if res.returncode != 0:
        raise SystemExit(f"satchel {args[0]} failed: {res.stderr}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="satchel-bench-bg-"))
    private, public = write_key_pair(SigningKey.generate("ed25519"), work / "vendor")
    keys = {"vendor": private, "vendor.pub": public}
    hosts, ports, bundles = {}, {}, {}
    for kind, extra in (("recreate", ""), ("blue-green", BLUE_GREEN)):
        ports[kind] = free_port()
        for version in ("1.0.0", "1.1.0"):
            bundles[kind, version] = make_bundle(work / kind / version, version, keys, spec_extra=extra,
                                                 web_extra=f'    ports: ["127.0.0.1:{ports[kind]}:8080"]\n')
        hosts[kind] = Host(work / f"root-{kind}", keys)
    try:
        for kind, host in hosts.items():
            timed(host, "install", bundles[kind, "1.0.0"])
        print(f"{'latency, new connection per request':38} {'rate':>6} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'failed':>7} {'reached/s':>10}")
        for rate in (50, 500):
            for kind, via in (("recreate", "direct (engine-published port)"), ("blue-green", "through the proxy")):
                lat, failed, reached = load(ports[kind], rate, args.seconds)
                print(f"{via:38} {rate:6} {pct(lat, 0.5):8.2f} {pct(lat, 0.99):8.2f} {failed:7} {reached:10.0f}")
        times: dict[str, list[float]] = {}
        for _ in range(args.runs):
            for kind, host in hosts.items():
                times.setdefault(f"{kind} upgrade", []).append(timed(host, "install", bundles[kind, "1.1.0"]))
                times.setdefault(f"{kind} rollback", []).append(timed(host, "rollback"))
        print(f"\n{'switch (medians of ' + str(args.runs) + ')':38} {'seconds':>8} {'vs recreate':>12}")
        for op in ("upgrade", "rollback"):
            base = statistics.median(times[f"recreate {op}"])
            for kind in hosts:
                t = statistics.median(times[f"{kind} {op}"])
                print(f"{kind + ' ' + op:38} {t:8.2f} {t / base:11.2f}x")
    finally:
        for host in hosts.values():
            host.cleanup()


if __name__ == "__main__":
    main()
