"""Keys and trust decisions (pure): every verdict of signing.trust."""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization

from signing import canonical, envelope, trust
from signing.errors import (
    BadSignatureError,
    ExpiredError,
    KeyFileError,
    MalformedError,
    UnsignedError,
    UntrustedKeyError,
)
from signing.keys import SigningKey, load_signing_key, load_verify_key

PAYLOAD = canonical.dumps({"name": "hello", "version": "1.0.0"})


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_keygen_writes_private_0600_and_keyid_is_sha256_of_spki(cli, tmp_path, kind):
    res = cli("keygen", "--out", tmp_path / "v", "--type", kind, "--json")
    assert res.code == 0, res.err
    info = res.json()
    private, public = tmp_path / "v.key", tmp_path / "v.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    der = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert info["keyid"] == hashlib.sha256(der).hexdigest()
    assert load_signing_key(private).public.keyid == load_verify_key(public).keyid


def test_keygen_refuses_to_overwrite(cli, tmp_path):
    assert cli("keygen", "--out", tmp_path / "v").code == 0
    before = (tmp_path / "v.key").read_bytes()
    res = cli("keygen", "--out", tmp_path / "v")
    assert res.code == 2 and "already exists" in res.err
    assert (tmp_path / "v.key").read_bytes() == before


def test_private_key_passed_as_public_is_a_clear_error(tmp_path):
    key = SigningKey.generate()
    (tmp_path / "k.key").write_bytes(key.pem())
    with pytest.raises(KeyFileError, match="private key"):
        load_verify_key(tmp_path / "k.key")


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_good_signature_verifies_and_names_signer(kind):
    key = SigningKey.generate(kind)
    verified = trust.verify_signatures(PAYLOAD, envelope.sign(PAYLOAD, [key]), [key.public])
    assert verified.signers == (key.public.keyid,)


def test_ecdsa_signatures_are_deterministic():
    key = SigningKey.generate("ecdsa-p256")
    assert envelope.sign(PAYLOAD, [key]) == envelope.sign(PAYLOAD, [key])


def test_changed_payload_is_rejected():
    key = SigningKey.generate()
    sigs = envelope.sign(PAYLOAD, [key])
    with pytest.raises(BadSignatureError):
        trust.verify_signatures(PAYLOAD.replace(b"1.0.0", b"9.0.0"), sigs, [key.public])


def test_untrusted_signer_and_no_signature():
    key, other = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(UntrustedKeyError, match=key.public.keyid[:16]):
        trust.verify_signatures(PAYLOAD, envelope.sign(PAYLOAD, [key]), [other.public])
    with pytest.raises(UnsignedError):
        trust.verify_signatures(PAYLOAD, envelope.sign(PAYLOAD, []), [other.public])


def test_threshold_counts_distinct_trusted_keys():
    a, b = SigningKey.generate(), SigningKey.generate()
    both = envelope.sign(PAYLOAD, [a, b])
    assert len(trust.verify_signatures(PAYLOAD, both, [a.public, b.public], threshold=2).signers) == 2
    with pytest.raises(UntrustedKeyError, match="2 required"):
        trust.verify_signatures(PAYLOAD, envelope.sign(PAYLOAD, [a]), [a.public, b.public], threshold=2)


def test_a_bad_signature_by_a_trusted_key_fails_even_next_to_a_good_one():
    a, b = SigningKey.generate(), SigningKey.generate()
    good = envelope.parse(envelope.sign(PAYLOAD, [a]))[0]
    forged = envelope.parse(envelope.sign(b"other", [b]))[0]
    import base64
    doc = canonical.dumps({"signatures": sorted([
        {"alg": s.algorithm, "keyid": s.keyid, "sig": base64.b64encode(s.value).decode()}
        for s in (good, forged)], key=lambda e: e["keyid"])})
    with pytest.raises(BadSignatureError):
        trust.verify_signatures(PAYLOAD, doc, [a.public, b.public])


@pytest.mark.parametrize("doc", [
    b'{"signatures":[]} ',
    b'{"signatures":[],"signatures":[]}',
    b'{"signatures":[{"alg":"ed25519","keyid":"ab","sig":"AA=="}]}',
    b'{"signatures":[{"alg":"rsa","keyid":"' + b"a" * 64 + b'","sig":"AA=="}]}',
    b'{"signatures":[{"alg":"ed25519","keyid":"' + b"a" * 64 + b'","sig":"!!"}]}',
    b'{"signatures":1.5}',
    b"not json",
])
def test_malformed_signature_documents(doc):
    with pytest.raises(MalformedError):
        envelope.parse(doc)


def test_canonical_json_rejects_duplicates_floats_and_whitespace():
    for bad in (b'{"a":1,"a":2}', b'{"a":1.0}', b'{"a": 1}', b'{"b":1,"a":2}', b'{"a":NaN}'):
        with pytest.raises(MalformedError):
            canonical.loads(bad)
    assert canonical.loads(b'{"a":[1,"x"],"b":{}}') == {"a": [1, "x"], "b": {}}


def test_expiry_uses_the_clock_passed_in():
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    trust.check_not_expired(expires, datetime(2026, 12, 31, tzinfo=UTC))
    trust.check_not_expired(None, datetime(2099, 1, 1, tzinfo=UTC))
    with pytest.raises(ExpiredError):
        trust.check_not_expired(expires, expires)


def test_semantic_version_order_and_downgrade_policy():
    from signing.errors import DowngradeError

    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"]
    assert sorted(order, key=trust.version_key) == order
    trust.check_version("1.1.0", "1.0.0", allow_downgrade=False)
    trust.check_version("1.0.0", "1.0.0", allow_downgrade=False)
    trust.check_version("1.0.0", None, allow_downgrade=False)
    trust.check_version("0.9.0", "1.0.0", allow_downgrade=True)
    with pytest.raises(DowngradeError, match=r"older than the installed 1\.0\.0"):
        trust.check_version("1.0.0-rc.1", "1.0.0", allow_downgrade=False)
