"""Trust over the years: key rotation inside signed bundles, revocation, k-of-n signature
thresholds, and expiry judged at the later of the clock and the last successful install."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bundler.build import BuildOptions, build
from bundler.spec import load_spec
from installer.install import install
from installer.options import InstallOptions
from installer.state import Host
from installer.tools.registry import ManagedRegistry
from signing import envelope, trust
from signing.errors import ExpiredError, UntrustedKeyError
from signing.keys import SigningKey, load_signing_key, write_key_pair
from tests.images import BUSYBOX
from tests.infra import free_port


@pytest.fixture
def vendor(tmp_path) -> dict[str, Path]:
    """Two vendor keys, A (today's) and B (next year's)."""
    out = {}
    for name in ("a", "b"):
        write_key_pair(SigningKey.generate(), tmp_path / name)
        out[name] = tmp_path / f"{name}.key"
    return out


def bundle(tmp_path: Path, version: str, signers: list[Path], extra: str = "",
           endorse: list[Path] = ()) -> Path:
    d = tmp_path / f"spec-{version}"
    (d / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, d / "rootfs" / "bin" / "busybox")
    for key in endorse:  # endorsed keys are referenced relative to the spec
        shutil.copy(key.with_suffix(".pub"), d / key.with_suffix(".pub").name)
    (d / "satchel.yaml").write_text(f"name: app\nversion: {version}\nimages:\n"
                                    f"  - ref: acme/app:{version}\n    source: dir:rootfs\n{extra}")
    out = tmp_path / f"app-{version}.bundle"
    build(load_spec(d / "satchel.yaml"), out, [load_signing_key(k) for k in signers],
          BuildOptions(cache=tmp_path / "cache"))
    return out


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("SATCHEL_REGISTRY_PORT", str(free_port()))
    r = Host(tmp_path / "root")
    yield r
    ManagedRegistry(r.registry_dir).stop()


def test_a_revoked_key_counts_for_nothing():
    a, b = SigningKey.generate(), SigningKey.generate()
    payload = b'{"x":1}'
    sigs = envelope.sign(payload, [a, b])
    assert trust.verify_signatures(payload, sigs, [a.public, b.public], revoked=[b.public.keyid]).signers == (
        a.public.keyid,)
    with pytest.raises(UntrustedKeyError, match="revoked"):
        trust.verify_signatures(payload, envelope.sign(payload, [a]), [a.public], revoked=[a.public.keyid])


def test_effective_now_never_goes_back_before_the_last_install():
    clock, last = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    assert trust.effective_now(clock, last) == last
    assert trust.effective_now(last, clock) == last
    assert trust.effective_now(clock, None) == clock


def test_key_rotation_and_revocation_travel_in_bundles(tmp_path, vendor, root, cli):
    root.init()
    shutil.copy(vendor["a"].with_suffix(".pub"), root.trust / "a.pub")
    # 1.1.0, signed by A, endorses B.
    rotate = bundle(tmp_path, "1.1.0", [vendor["a"]], extra="keys:\n  add: [b.pub]\n",
                    endorse=[vendor["b"]])
    assert install(root, rotate, InstallOptions()).action == "installed"
    store_ids = {p.stem for p in root.trust.glob("*.pub")}
    b_id = load_signing_key(vendor["b"]).public.keyid
    a_id = load_signing_key(vendor["a"]).public.keyid
    assert b_id in store_ids
    # 1.2.0, signed by B alone, is accepted now; it revokes A.
    revoke = bundle(tmp_path, "1.2.0", [vendor["b"]], extra=f"keys:\n  revoke: [{a_id}]\n")
    assert install(root, revoke, InstallOptions()).action == "installed"
    # 1.3.0 signed by A alone is refused, even if someone passes A's key by hand.
    old = bundle(tmp_path, "1.3.0", [vendor["a"]])
    with pytest.raises(UntrustedKeyError):
        install(root, old, InstallOptions())
    res = cli("--root", root.path, "install", old, "--key", vendor["a"].with_suffix(".pub"))
    assert res.code == 3 and "revoked" in res.err
    events = [(e["event"], e.get("keyid")) for e in root.history() if e["event"] in ("trusted", "revoked")]
    assert events == [("trusted", b_id), ("revoked", a_id)]
    listing = cli("--root", root.path, "trust", "list", "--json").json()
    assert listing["revoked"] == [a_id] and [k["keyid"] for k in listing["keys"]] == [b_id]


def test_k_of_n_signatures(tmp_path, vendor, root, cli):
    for key in vendor.values():
        assert cli("--root", root.path, "trust", "add", key.with_suffix(".pub")).code == 0
    assert cli("--root", root.path, "trust", "threshold", "2").code == 0
    one = bundle(tmp_path, "1.0.0", [vendor["a"]])
    res = cli("--root", root.path, "install", one)
    assert res.code == 3 and "1 trusted signature(s), 2 required" in res.err
    both = bundle(tmp_path, "1.0.1", [vendor["a"], vendor["b"]])
    res = cli("--root", root.path, "install", both)
    assert res.code == 0, res.err
    assert cli("--root", root.path, "trust", "threshold", "3").code == 2


def test_expiry_is_judged_at_the_later_of_clock_and_last_install(tmp_path, vendor, root):
    root.init()
    shutil.copy(vendor["a"].with_suffix(".pub"), root.trust / "a.pub")
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expired = bundle(tmp_path, "1.1.0", [vendor["a"]], extra=f"expires: '{past}'\n")
    set_back = datetime.now(UTC) - timedelta(days=2)
    # A host whose clock was set back, but which never installed anything: the clock is all it has.
    fresh = Host(tmp_path / "fresh")
    fresh.init()
    shutil.copy(vendor["a"].with_suffix(".pub"), fresh.trust / "a.pub")
    try:
        assert install(fresh, expired, InstallOptions(now=set_back)).action == "installed"
    finally:
        ManagedRegistry(fresh.registry_dir).stop()
    # A host that installed something today cannot be fooled by setting its clock back.
    assert install(root, bundle(tmp_path, "1.0.0", [vendor["a"]]), InstallOptions()).action == "installed"
    with pytest.raises(ExpiredError):
        install(root, expired, InstallOptions(now=set_back))
    assert root.app("app").current() == "1.0.0"
