"""Trust over the years: key rotation inside signed bundles, revocation, k-of-n signature
thresholds, and expiry judged at the later of the clock and the last successful install.
And trust that cannot be bent: key ids compared in one form, key changes only from keys the
host already trusts, an unsafe trust directory refused, a clock that was once wrong
recoverable by an explicit recorded step, an expired release rolled back to with a record."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bundler.build import BuildOptions, build
from bundler.errors import EnvironmentProblem
from bundler.spec import load_spec
from installer.install import install, rollback
from installer.options import InstallOptions
from installer.state import Host
from installer.tools.registry import ManagedRegistry
from installer.truststore import TrustStore
from signing import envelope, trust
from signing.errors import ExpiredError, UntrustedKeyError
from signing.grammar import format_time
from signing.keys import SigningKey, load_signing_key, load_verify_key, write_key_pair
from tests.conftest import HOSTILE_COUNTS
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


def keyid(key) -> str:
    return load_signing_key(key).public.keyid


def trusting(root, *keys) -> None:
    root.init()
    for key in keys:
        shutil.copy(key.with_suffix(".pub"), root.trust / key.with_suffix(".pub").name)


def test_key_ids_are_compared_in_one_form_and_a_revoke_must_match(root, vendor, cli):
    trusting(root, vendor["a"])
    a_id = keyid(vendor["a"])
    res = cli("--root", root.path, "trust", "revoke", a_id[:12].upper())
    assert res.code == 0 and f"revoked {a_id}" in res.out, res.err
    listing = cli("--root", root.path, "trust", "list", "--json").json()
    assert listing == {"keys": [], "revoked": [a_id], "threshold": 1}
    res = cli("--root", root.path, "trust", "revoke", "deadbeef00")
    assert res.code == 2 and "no trusted key matches 'deadbeef00'" in res.err
    assert cli("--root", root.path, "trust", "revoke", "not-a-key").code == 2
    # A revocation written in capitals (by hand, or by an older Satchel) still counts.
    trusting(root, vendor["b"])
    (root.trust / "revoked").write_text(f"{a_id}\n{keyid(vendor['b']).upper()}\n")
    assert cli("--root", root.path, "trust", "list", "--json").json()["keys"] == []
    HOSTILE_COUNTS["trust"] += 1


@pytest.mark.parametrize("render_only", [False, True], ids=["install", "render-only"])
def test_a_bundle_verified_with_an_ad_hoc_key_changes_no_trust(tmp_path, root, vendor, render_only):
    trusting(root, vendor["a"])
    a_id, b_id = keyid(vendor["a"]), keyid(vendor["b"])
    def keys_and_revocations() -> dict[str, bytes]:   # the clock floor moves with every install
        return {p.name: p.read_bytes() for p in root.trust.iterdir() if p.name != "clock-floor"}

    before = keys_and_revocations()
    hostile = bundle(tmp_path, "1.0.0", [vendor["b"]], extra=f"keys:\n  add: [b.pub]\n  revoke: [{a_id}]\n",
                     endorse=[vendor["b"]])
    opts = InstallOptions(keys=[load_verify_key(vendor["b"].with_suffix(".pub"))],
                          render_only=tmp_path / "rendered" if render_only else None)
    assert install(root, hostile, opts).action in ("installed", "rendered")
    assert keys_and_revocations() == before
    store = TrustStore(root.trust)
    trusted = store.keys()
    assert [k.keyid for k in trusted] == [a_id] and store.revoked() == set() and b_id != a_id
    if not render_only:
        assert root.history()[-1]["event"] == "key-changes-ignored"
    HOSTILE_COUNTS["trust"] += 1


@pytest.mark.parametrize("spoil", ["world-writable dir", "symlinked dir", "key of another user"])
def test_an_unsafe_trust_directory_is_refused(tmp_path, root, vendor, spoil, cli):
    trusting(root, vendor["a"])
    app = bundle(tmp_path, "1.0.0", [vendor["a"]])
    if spoil == "world-writable dir":
        root.trust.chmod(0o777)
    elif spoil == "symlinked dir":
        real = tmp_path / "elsewhere"
        root.trust.rename(real)
        root.trust.symlink_to(real)
    else:
        os.chown(root.trust / "a.pub", 65534, 65534)
    with pytest.raises(EnvironmentProblem, match="could make this host trust their key"):
        install(root, app, InstallOptions())
    res = cli("--root", root.path, "install", app)
    assert res.code == 4 and "chmod go-w" in res.err and root.app("app").current() is None
    HOSTILE_COUNTS["trust"] += 1


def test_a_clock_once_in_the_future_is_reset_explicitly(tmp_path, root, vendor, cli):
    trusting(root, vendor["a"])
    future = datetime.now(UTC) + timedelta(days=365)
    assert install(root, bundle(tmp_path, "1.0.0", [vendor["a"]]), InstallOptions(now=future)).action == "installed"
    soon = format_time(datetime.now(UTC) + timedelta(days=1))
    fresh = bundle(tmp_path, "1.1.0", [vendor["a"]], extra=f"expires: '{soon}'\n")
    with pytest.raises(ExpiredError, match="satchel trust reset-clock --yes"):
        install(root, fresh, InstallOptions())
    assert cli("--root", root.path, "trust", "reset-clock").code == 2          # needs --yes
    res = cli("--root", root.path, "trust", "reset-clock", "--yes")
    assert res.code == 0, res.err
    event = root.history()[-1]
    assert event["event"] == "clock-reset" and event["previous"] == format_time(future)
    assert install(root, fresh, InstallOptions()).action == "installed"
    HOSTILE_COUNTS["trust"] += 1


def test_rollback_to_an_expired_release_is_allowed_and_recorded(tmp_path, root, vendor):
    trusting(root, vendor["a"])
    now = datetime.now(UTC)
    short = bundle(tmp_path, "1.0.0", [vendor["a"]], extra=f"expires: '{format_time(now + timedelta(hours=1))}'\n")
    assert install(root, short, InstallOptions(now=now)).action == "installed"
    assert install(root, bundle(tmp_path, "1.1.0", [vendor["a"]]), InstallOptions(now=now)).action == "installed"
    app = root.app("app")
    out = rollback(app, None, InstallOptions(now=now + timedelta(hours=2)))
    assert out.action == "rolled-back" and app.current() == "1.0.0"
    warned = [e for e in app.history() if e["event"] == "expired-rollback"]
    assert warned and warned[-1]["version"] == "1.0.0" and warned[-1]["expired"] == format_time(now + timedelta(hours=1))
