"""Fuzzing the manifest parser and the bundle reader (hypothesis). Whatever the input, the
only outcomes are a verified manifest or a typed error (BundleError, TrustError): never
another exception, never a hang. CI runs a short budget; SATCHEL_FUZZ_EXAMPLES=N runs longer.
Inputs that ever broke this are kept in tests/data/fuzz-regressions and replayed."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler import format as bundle_format
from bundler import manifest as bundle_manifest
from bundler.errors import BundleError
from bundler.verify import authorizer
from signing.errors import TrustError
from signing.grammar import now_utc
from signing.keys import SigningKey
from tests import tamper

EXAMPLES = int(os.environ.get("SATCHEL_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None)
REGRESSIONS = Path(__file__).parent / "data" / "fuzz-regressions"
KEY = SigningKey.generate()


def small_bundle() -> bytes:
    """A real, signed bundle with two blobs, made with the writer."""
    blobs = [b'{"imageLayoutVersion":"1.0.0"}', b"payload one", b"payload two" * 50]
    members = [bundle_manifest.Member.for_bytes("oci-layout", blobs[0])]
    members += sorted((bundle_manifest.Member.for_blob("sha256:" + bundle_manifest.Member.for_bytes("x", b).sha256,
                                                     len(b)) for b in blobs[1:]), key=lambda m: m.path)
    data = {m.sha256: b for m, b in zip(members, blobs, strict=False)}
    data.update({bundle_manifest.Member.for_bytes("x", b).sha256: b for b in blobs[1:]})
    manifest = bundle_manifest.BundleManifest(name="fuzz", version="1.0.0", created="2026-01-01T00:00:00Z",
                                            min_installer="0.1.0", members=tuple(members))
    manifest_bytes = manifest.to_bytes()
    from signing import envelope

    out = io.BytesIO()
    bundle_format.write_bundle(out, manifest_bytes, envelope.sign(manifest_bytes, [KEY]), members,
                               lambda m: io.BytesIO(data[m.sha256]))
    return out.getvalue()


BUNDLE = small_bundle()
MANIFEST_DOC = json.loads(tamper.split(BUNDLE)[0].data)


def read(data: bytes) -> None:
    authorize, _ = authorizer([KEY.public], now_utc())
    with contextlib.suppress(BundleError, TrustError):
        bundle_format.read_bundle(io.BytesIO(data), authorize)


def parse(data: bytes) -> None:
    with contextlib.suppress(TrustError):  # MalformedError
        bundle_manifest.parse_manifest(data)


def test_the_seed_bundle_is_valid():
    authorize, _ = authorizer([KEY.public], now_utc())
    assert bundle_format.read_bundle(io.BytesIO(BUNDLE), authorize).name == "fuzz"


@FUZZ
@given(st.binary(max_size=4096))
def test_parser_on_arbitrary_bytes(data):
    parse(data)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                        max_size=4), max_leaves=12)


@FUZZ
@given(st.sampled_from(sorted(MANIFEST_DOC)), json_values)
def test_parser_on_a_manifest_with_one_field_replaced(key, value):
    from signing import canonical

    doc = dict(MANIFEST_DOC)
    doc[key] = value
    parse(canonical.dumps(doc))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(BUNDLE) - 1), st.integers(1, 255)), min_size=1, max_size=4))
def test_reader_on_byte_flips(flips):
    data = bytearray(BUNDLE)
    for pos, mask in flips:
        data[pos] ^= mask
    read(bytes(data))


@FUZZ
@given(st.integers(0, len(BUNDLE)), st.binary(max_size=64), st.integers(0, 64))
def test_reader_on_cuts_and_insertions(pos, insert, cut):
    read(BUNDLE[:pos] + insert + BUNDLE[pos + cut:])


@FUZZ
@given(st.binary(max_size=2048))
def test_reader_on_tar_streams_with_arbitrary_content(payload):
    """Valid zstd around an arbitrary decompressed stream: the tar and member checks face it alone."""
    entries = tamper.split(BUNDLE)
    read(tamper.compress(entries[0].raw() + entries[1].raw() + payload))
    read(tamper.compress(payload))


def blocky_bundle() -> tuple[bytes, dict[str, bytes]]:
    """A bundle of many zstd blocks, stored (random bytes) and compressed (text) alike, and
    its payload by sha256."""
    rng = random.Random(7)
    blobs = [rng.randbytes(300_000), b"satchel " * 60_000, rng.randbytes(5_000) + b"\0" * 200_000]
    members = sorted((bundle_manifest.Member.for_blob("sha256:" + bundle_manifest.Member.for_bytes("x", b).sha256,
                                                      len(b)) for b in blobs), key=lambda m: m.path)
    data = {bundle_manifest.Member.for_bytes("x", b).sha256: b for b in blobs}
    manifest = bundle_manifest.BundleManifest(name="blocks", version="1.0.0", created="2026-01-01T00:00:00Z",
                                            min_installer="0.1.0", members=tuple(members))
    from signing import envelope

    out = io.BytesIO()
    bundle_format.write_bundle(out, manifest.to_bytes(), envelope.sign(manifest.to_bytes(), [KEY]), members,
                               lambda m: io.BytesIO(data[m.sha256]))
    return out.getvalue(), data


BLOCKY, BLOCKY_DATA = blocky_bundle()


class _Dribble(io.RawIOBase):
    """The bundle's bytes, handed out a few at a time in the sizes given (over and over): the
    frame reader's block headers fall across its reads at every offset."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.pos, self.sizes = data, 0, itertools.cycle(sizes)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self.data[self.pos:self.pos + min(len(buffer), next(self.sizes))]
        buffer[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


class _Collect:
    def __init__(self) -> None:
        self.got: dict[str, io.BytesIO] = {}

    def begin(self, member):  # type: ignore[no-untyped-def]
        return self.got.setdefault(member.sha256, io.BytesIO())

    def commit(self, member, written) -> None:  # type: ignore[no-untyped-def]
        pass


@settings(FUZZ, max_examples=min(EXAMPLES, 60))
@given(st.lists(st.integers(1, 1 << 17), min_size=1, max_size=8), st.integers(0, len(BLOCKY)))
def test_reader_on_reads_of_any_size(sizes, cut):
    """Whole, the bundle reads to the same bytes however its file hands them out; cut
    anywhere, it is refused."""
    authorize, _ = authorizer([KEY.public], now_utc())
    sink = _Collect()
    bundle_format.read_bundle(_Dribble(BLOCKY, sizes), authorize, sink)
    assert {k: v.getvalue() for k, v in sink.got.items()} == BLOCKY_DATA
    if cut < len(BLOCKY):
        with pytest.raises(BundleError):
            bundle_format.read_bundle(_Dribble(BLOCKY[:cut], sizes), authorize)


def test_regression_corpus():
    assert REGRESSIONS.is_dir()
    for case in sorted(REGRESSIONS.glob("*.bin")):
        read(case.read_bytes())
        parse(case.read_bytes())
