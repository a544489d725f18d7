"""Cosign signatures travel with their image: a signature stored by cosign's convention (the tag
sha256-HEX.sig of the image's repository, a simple-signing payload with its signature in a
layer annotation) is bundled when the spec asks for it, pushed into the local registry beside
the image, and verifies there by the same convention. (The cosign program is not available on
this machine; the signature is made and checked here exactly as cosign lays it out.)"""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bundler.oci.model import Descriptor
from bundler.oci.registry import Endpoint, RegistryClient
from tests.hosts import Host

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def _put(client: RegistryClient, repo: str, media_type: str, data: bytes) -> Descriptor:
    desc = Descriptor(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    client.push_blob(repo, desc, io.BytesIO(data))
    return desc


def sign(client: RegistryClient, repo: str, reference: str, key: ec.EllipticCurvePrivateKey) -> str:
    """Sign the image as `cosign sign --key` would store it; returns the image digest."""
    digest = client.get_manifest(repo, reference)[0].digest
    payload = json.dumps({"critical": {"identity": {"docker-reference": f"{client.endpoint.host}/{repo}"},
                                       "image": {"docker-manifest-digest": digest},
                                       "type": "cosign container image signature"}, "optional": None}).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = _put(client, repo, SIMPLE_SIGNING, payload)
    config = _put(client, repo, OCI_CONFIG, json.dumps({
        "architecture": "", "os": "", "config": {}, "created": "0001-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]}}).encode())
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
                       "layers": [{"mediaType": SIMPLE_SIGNING, "digest": layer.digest, "size": layer.size,
                                   "annotations": {SIGNATURE: signature}}]}).encode()
    tag = digest.replace(":", "-") + ".sig"
    client.push_manifest(repo, tag, Descriptor(OCI_MANIFEST, "sha256:" + hashlib.sha256(body).hexdigest(),
                                               len(body)), body)
    return digest


def cosign_verify(client: RegistryClient, repo: str, digest: str, public: ec.EllipticCurvePublicKey) -> bool:
    """cosign's check: the signature image at sha256-HEX.sig holds a payload naming this digest,
    signed by the key."""
    _, body = client.get_manifest(repo, digest.replace(":", "-") + ".sig")
    for layer in json.loads(body)["layers"]:
        with client.open_blob(repo, Descriptor(layer["mediaType"], layer["digest"], layer["size"])) as fh:
            payload = fh.read()
        if json.loads(payload)["critical"]["image"]["docker-manifest-digest"] != digest:
            continue
        public.verify(base64.b64decode(layer["annotations"][SIGNATURE]), payload, ec.ECDSA(hashes.SHA256()))
        return True
    return False


def test_a_cosign_signature_is_bundled_pushed_and_verifies_in_the_local_registry(host: Host, registry, test_images,
                                                                                keys, cli, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    source = RegistryClient(Endpoint(registry.host, insecure=True))
    digest = sign(source, "acme/worker", "worker-1.0", key)
    spec = tmp_path / "satchel.yaml"
    spec.write_text(f"name: signed\nversion: 1.0.0\nimages:\n  - ref: {registry.host}/acme/worker:worker-1.0\n"
                    "    signatures: true\n  - ref: {registry.host}/acme/web:web-1.0\n".replace("{registry.host}",
                                                                                            registry.host))
    bundle = tmp_path / "signed.bundle"
    res = cli("-q", "build", spec, "-o", bundle, "--key", keys["vendor"], "--cache", tmp_path / "cache", "--no-sbom")
    assert res.code == 0, res.err
    refs = [i["ref"] for i in cli("inspect", bundle, "--json").json()["images"]]
    assert f"{registry.host}/acme/worker:{digest.replace(':', '-')}.sig" in refs
    assert not any(r.endswith(".sig") and "acme/web" in r for r in refs)     # not asked for, not bundled
    host.app_name = "signed"
    res = host.install(bundle)
    assert res.returncode == 0, res.stderr
    local = RegistryClient(Endpoint(f"127.0.0.1:{host.env['SATCHEL_REGISTRY_PORT']}", insecure=True))
    assert local.get_manifest("acme/worker", digest)[0].digest == digest
    assert cosign_verify(local, "acme/worker", digest, key.public_key())
    with pytest.raises(InvalidSignature):
        cosign_verify(local, "acme/worker", digest, ec.generate_private_key(ec.SECP256R1()).public_key())
