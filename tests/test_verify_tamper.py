"""`satchel verify` rejects every kind of damage with exit 3 and one line naming member and reason."""

from __future__ import annotations

import io
import json
import resource
import shutil
import tarfile
from pathlib import Path

import pytest
import zstandard

from installer.cli import main
from signing import canonical
from tests import tamper
from tests.images import BUSYBOX


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, keys) -> bytes:
    d = tmp_path_factory.mktemp("tamper")
    (d / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, d / "rootfs" / "bin" / "busybox")
    (d / "NOTES.md").write_text("read me\n")
    (d / "satchel.yaml").write_text(
        "name: tamper\nversion: 1.0.0\nimages:\n  - ref: acme/tool:1.0\n    source: dir:rootfs\n"
        "files: [NOTES.md]\n")
    code = main(["-q", "build", str(d / "satchel.yaml"), "-o", str(d / "b.bundle"), "--key", str(keys["vendor"]),
                 "--cache", str(d / "cache")])
    assert code == 0
    return (d / "b.bundle").read_bytes()


def verify(cli, tmp_path: Path, data: bytes, key: Path) -> tuple[int, str]:
    path = tmp_path / "x.bundle"
    path.write_bytes(data)
    res = cli("verify", path, "--key", key)
    lines = [line for line in res.err.splitlines() if line.strip()]
    if res.code != 0:
        assert len(lines) == 1, f"expected one error line, got: {res.err!r}"
        assert "Traceback" not in res.err
    return res.code, res.err.strip()


def rebuilt(entries) -> bytes:
    return tamper.compress(tamper.join(entries))


def test_untouched_bundle_verifies_and_writes_nothing(cli, tmp_path, bundle, keys):
    (tmp_path / "x.bundle").write_bytes(bundle)
    before = sorted(p.name for p in tmp_path.iterdir())
    res = cli("verify", tmp_path / "x.bundle", "--key", keys["vendor.pub"], "--json")
    assert res.code == 0, res.err
    assert res.json()["ok"] is True and res.json()["signers"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_plain_tools_can_read_it(tmp_path, bundle):
    entries = tamper.split(bundle)
    assert [e.name for e in entries[:4]] == ["manifest.json", "signatures.json", "oci-layout", "index.json"]
    with tarfile.open(fileobj=io.BytesIO(tamper.decompress(bundle))) as tar:
        assert len(tar.getnames()) == len(entries)


def test_a_byte_flipped_inside_any_blob(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    blobs = [i for i, e in enumerate(entries) if e.name.startswith("blobs/")]
    assert len(blobs) >= 4
    for i in blobs:
        damaged = [tamper.Entry(e.header, e.data) for e in entries]
        data = bytearray(damaged[i].data)
        data[len(data) // 2] ^= 0x01
        damaged[i].data = bytes(data)
        code, err = verify(cli, tmp_path, rebuilt(damaged), keys["vendor.pub"])
        assert code == 3 and entries[i].name in err and "sha256 mismatch" in err, err


def test_a_byte_flipped_in_the_compressed_file(cli, tmp_path, bundle, keys):
    for pos in (len(bundle) // 3, len(bundle) // 2, len(bundle) - 10):
        data = bytearray(bundle)
        data[pos] ^= 0x40
        code, err = verify(cli, tmp_path, bytes(data), keys["vendor.pub"])
        assert code == 3, err


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99, -1])
def test_truncated_file(cli, tmp_path, bundle, keys, keep):
    cut = len(bundle) - 1 if keep == -1 else int(len(bundle) * keep)
    code, err = verify(cli, tmp_path, bundle[:cut], keys["vendor.pub"])
    assert code == 3 and "truncated" in err, err


@pytest.mark.parametrize("damage", ["cut at 99%", "cut by one byte", "one byte appended"])
def test_inspect_says_when_the_file_is_cut_or_padded(cli, tmp_path, bundle, damage):
    """inspect reads only the manifest, but walks the zstd block headers to the end (seeks, no
    decoding): a truncated or padded file is exit 3 in one line."""
    data = {"cut at 99%": bundle[:int(len(bundle) * 0.99)], "cut by one byte": bundle[:-1],
            "one byte appended": bundle + b"x"}[damage]
    (tmp_path / "d.bundle").write_bytes(data)
    res = cli("inspect", tmp_path / "d.bundle")
    assert res.code == 3 and ("truncated" in res.err or "trailing data" in res.err), res.err
    (tmp_path / "ok.bundle").write_bytes(bundle)
    assert cli("inspect", tmp_path / "ok.bundle").code == 0


def test_signed_by_a_key_not_given(cli, tmp_path, bundle, keys):
    code, err = verify(cli, tmp_path, bundle, keys["other.pub"])
    assert code == 3 and "untrusted key" in err, err


def test_unsigned_bundles(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    empty = canonical.dumps({"signatures": []})
    no_sigs = [entries[0], tamper.entry("signatures.json", empty), *entries[2:]]
    code, err = verify(cli, tmp_path, rebuilt(no_sigs), keys["vendor.pub"])
    assert code == 3 and "not signed" in err, err
    without_member = [entries[0], *entries[2:]]
    code, err = verify(cli, tmp_path, rebuilt(without_member), keys["vendor.pub"])
    assert code == 3 and "not signed" in err, err


def test_manifest_edited(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    doc = json.loads(entries[0].data)
    doc["version"] = "9.9.9"
    edited = canonical.dumps(doc)
    entries[0] = tamper.Entry(tamper.entry("manifest.json", edited).header, edited)
    code, err = verify(cli, tmp_path, rebuilt(entries), keys["vendor.pub"])
    assert code == 3 and "does not match the manifest" in err, err


def test_member_appended(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    extra = tamper.Entry(entries[-1].header.replace(entries[-1].name.encode(), b"blobs/sha256/" + b"e" * 64),
                         entries[-1].data)
    code, err = verify(cli, tmp_path, rebuilt([*entries, extra]), keys["vendor.pub"])
    assert code == 3 and "blobs/sha256/" + "e" * 64 in err and "not listed" in err, err


def test_member_removed(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    gone = entries[5].name
    code, err = verify(cli, tmp_path, rebuilt(entries[:5] + entries[6:]), keys["vendor.pub"])
    assert code == 3 and gone in err and "missing" in err, err
    code, err = verify(cli, tmp_path, rebuilt(entries[:-1]), keys["vendor.pub"])
    assert code == 3 and entries[-1].name in err and "missing" in err, err


def test_member_duplicated(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    code, err = verify(cli, tmp_path, rebuilt(entries[:5] + [entries[4]] + entries[5:]), keys["vendor.pub"])
    assert code == 3 and entries[4].name in err and "twice" in err, err


def test_member_moved(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    moved = entries[:4] + entries[5:] + [entries[4]]
    code, err = verify(cli, tmp_path, rebuilt(moved), keys["vendor.pub"])
    assert code == 3 and entries[4].name in err and "out of order" in err, err


@pytest.mark.parametrize("name", ["../x", "/x", "blobs/../../etc/passwd"])
def test_member_with_escaping_name(cli, tmp_path, bundle, keys, name):
    entries = tamper.split(bundle)
    evil = entries[:4] + [tamper.entry(name, b"owned")] + entries[4:]
    code, err = verify(cli, tmp_path, rebuilt(evil), keys["vendor.pub"])
    assert code == 3 and repr(name) in err and "not allowed" in err, err


@pytest.mark.parametrize("kind,word", [(tarfile.SYMTYPE, "symlink"), (tarfile.LNKTYPE, "hard link"),
                                       (tarfile.CHRTYPE, "character device"), (tarfile.FIFOTYPE, "FIFO")])
def test_link_and_device_members(cli, tmp_path, bundle, keys, kind, word):
    entries = tamper.split(bundle)
    evil = entries[:4] + [tamper.entry(entries[4].name, kind=kind, link="/etc/shadow")] + entries[5:]
    code, err = verify(cli, tmp_path, rebuilt(evil), keys["vendor.pub"])
    assert code == 3 and entries[4].name in err and word in err, err


def test_setuid_mode_is_rejected(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    header = bytearray(entries[4].header)
    header[100:108] = b"0004755\0"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    entries[4] = tamper.Entry(bytes(header), entries[4].data)
    code, err = verify(cli, tmp_path, rebuilt(entries), keys["vendor.pub"])
    assert code == 3 and entries[4].name in err and "non-canonical" in err, err


def test_trailing_garbage(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    code, err = verify(cli, tmp_path, tamper.compress(tamper.join(entries, trailer=b"junk")), keys["vendor.pub"])
    assert code == 3 and "trailing data after the end of the tar archive" in err, err
    code, err = verify(cli, tmp_path, bundle + b"junk", keys["vendor.pub"])
    assert code == 3 and "trailing data after the end of the zstd frame" in err, err
    code, err = verify(cli, tmp_path, bundle + tamper.compress(b"\0" * 1024), keys["vendor.pub"])
    assert code == 3 and "trailing data" in err, err


def test_zstd_window_over_the_limit(cli, tmp_path, bundle, keys):
    big_window = tamper.compress(tamper.join(tamper.split(bundle)), window_log=28)
    code, err = verify(cli, tmp_path, big_window, keys["vendor.pub"])
    assert code == 3 and "window of 256 MiB exceeds the 128 MiB limit" in err, err


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_decompression_bombs(cli, tmp_path, bundle, keys):
    entries = tamper.split(bundle)
    # 1 GiB of zeros after the archive end: compresses to ~30 KiB.
    path = tmp_path / "bomb.bundle"
    with path.open("wb") as out, zstandard.ZstdCompressor(level=1).stream_writer(out) as w:
        w.write(tamper.join(entries))
        zeros = b"\0" * (1 << 20)
        for _ in range(1024):
            w.write(zeros)
    assert path.stat().st_size < len(bundle) + (1 << 20)  # the bomb adds well under 1 MiB
    before = _rss_mib()
    res = cli("verify", path, "--key", keys["vendor.pub"])
    assert res.code == 3 and "trailing data after the end of the tar archive" in res.err, res.err
    # A manifest member that claims to be huge is refused from its header alone.
    huge = bytearray(tamper.entry("manifest.json").header)
    huge[124:136] = b"%011o\0" % (20 << 30)
    huge[148:156] = b" " * 8
    huge[148:156] = b"%06o\0 " % sum(huge)
    code, err = verify(cli, tmp_path, tamper.compress(bytes(huge) + b"\0" * 4096), keys["vendor.pub"])
    assert code == 3 and "manifest.json is 21474836480 bytes, over the" in err, err
    assert _rss_mib() - before < 64


def test_not_a_bundle(cli, tmp_path, keys):
    code, err = verify(cli, tmp_path, b"PK\x03\x04 this is a zip", keys["vendor.pub"])
    assert code == 3 and "not a Satchel bundle" in err, err
    res = cli("verify", tmp_path / "missing.bundle", "--key", keys["vendor.pub"])
    assert res.code == 2 and "cannot open bundle" in res.err
