"""Check bundle members on every core: while the reader decompresses, each member is hashed
(and written to its sink) on one of a few lanes.

A member stays on one lane from its first chunk to its commit, so its bytes are hashed and
written in order, by one thread, exactly as they were read: the check and the use are still one
pass over the same bytes. Different members run on different lanes at once; sha256, zstd and
file writes all release the GIL. Two members overlap only if the reader can run ahead of the
lane hashing the first one by most of its size (decompression is about twice as fast as sha256),
so the chunk buffers are a pool of up to BUFFERED bytes, made as needed: the reader waits for
a free one when the lanes fall behind, and memory stays flat whatever the bundle's size.

Errors are reported as a one-lane reader would: the earliest member's first.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from .errors import BundleError
from .manifest import Member
from .oci.digest import Writable

# Two-core hosts are the common case; more lanes than cores only add switching.
LANES = max(1, min(4, os.cpu_count() or 1))
# Layers up to about twice this size are hashed side by side with the next one.
BUFFERED = 48 << 20


class Sink(Protocol):
    """Where verified member bytes go. `begin` (called in member order, on the reader's thread)
    may return None to only hash them; `commit` is called, on the member's lane, once its bytes
    matched the manifest, with the writer `begin` returned. Members may commit out of order."""

    def begin(self, member: Member) -> Writable | None: ...

    def commit(self, member: Member, written: Writable) -> None: ...


class _Job:
    def __init__(self, member: Member, dst: Writable | None, lane: int) -> None:
        self.member, self.dst, self.lane = member, dst, lane
        self.hash = hashlib.sha256()
        self.error: Exception | None = None     # a failed write: the member is never committed


class Lanes:
    """`with Lanes(sink) as lanes:` then, per member: `start`, `buffer` + `feed` for each
    chunk, `end`; finally `finish()`, which waits for every lane and raises the first error."""

    def __init__(self, sink: Sink, lanes: int = LANES, chunk: int = 1 << 20, buffered: int = BUFFERED) -> None:
        self.sink = sink
        self._pools = [ThreadPoolExecutor(1, thread_name_prefix=f"satchel-hash-{i}") for i in range(lanes)]
        self._queued = [0] * lanes          # bytes handed to each lane and not yet hashed
        self._lock = threading.Lock()
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._chunk, self._unmade = chunk, max(2, buffered // chunk)
        self._pending: deque[Future[None]] = deque()   # ends of members, in member order

    def __enter__(self) -> Lanes:
        return self

    def __exit__(self, *exc: object) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)

    def start(self, member: Member) -> _Job:
        self._raise_finished()
        lane = min(range(len(self._pools)), key=self._queued.__getitem__)
        return _Job(member, self.sink.begin(member), lane)

    def buffer(self) -> bytearray:
        """A free chunk buffer (waits while every buffer is in flight)."""
        if self._free.empty() and self._unmade:
            self._unmade -= 1
            return bytearray(self._chunk)
        return self._free.get()

    def feed(self, job: _Job, buf: bytearray, size: int) -> None:
        """Hash (and write) buf[:size] on the job's lane; the buffer returns to the pool after."""
        self._count(job.lane, size)
        self._submit(job, self._consume, job, buf, size)

    def end(self, job: _Job) -> None:
        """No more bytes for the job's member: compare its digest, then commit it, on its lane."""
        self._pending.append(self._submit(job, self._check, job))

    def finish(self) -> None:
        """Wait for every member, raising the earliest one's error."""
        while self._pending:
            self._pending.popleft().result()

    def _submit(self, job: _Job, fn: Callable[..., None], *args: object) -> Future[None]:
        return self._pools[job.lane].submit(fn, *args)

    def _count(self, lane: int, size: int) -> None:
        with self._lock:
            self._queued[lane] += size

    def _consume(self, job: _Job, buf: bytearray, size: int) -> None:
        try:
            if job.error is None:
                with memoryview(buf)[:size] as chunk:
                    job.hash.update(chunk)
                    if job.dst is not None:
                        job.dst.write(chunk)
        except Exception as exc:    # kept for _check: this lane's futures are not awaited
            job.error = exc
        finally:
            self._count(job.lane, -size)
            self._free.put(buf)

    def _check(self, job: _Job) -> None:
        if job.error is not None:
            raise job.error
        if job.hash.hexdigest() != job.member.sha256:
            raise BundleError(f"member {job.member.path}: sha256 mismatch, its content was altered")
        if job.dst is not None:
            self.sink.commit(job.member, job.dst)

    def _raise_finished(self) -> None:
        """Collect members already done, so an error stops the reader early."""
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()
