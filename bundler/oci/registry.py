"""A client for the OCI distribution API that streams, verifies and gives up in bounded time.

Why not oras-py on this path (see docs/REGISTRY.md): it reads whole blobs into memory on
upload, caches one bearer token for every scope, cannot push an index, does not verify
digests on pull, and retries a refused connection for minutes.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import requests

from ..errors import NotFoundError, RegistryError, RegistryServerError
from .digest import sha256_digest
from .model import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    media_type_of,
)
from .refs import DOCKER_HUB, is_loopback

ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Endpoint:
    """How to reach one registry: host, TLS policy and credentials."""

    host: str
    insecure: bool = False          # allow plain HTTP (always allowed on loopback)
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    attempts: int = 4               # per request; refused connections get 2 quick ones
    timeout: float = 60.0

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.host == DOCKER_HUB else self.host


def docker_credentials(host: str) -> tuple[str, str] | None:
    """Credentials for `host` as `docker login` left them: $DOCKER_CONFIG/config.json, its
    `auths`, and the credential helpers it names (`credsStore`, `credHelpers`), read through
    the Docker SDK's own auth module."""
    from docker import auth  # imported here: verifying a bundle needs no Docker SDK
    from docker.errors import DockerException

    try:
        config = auth.load_config()
        found = config.resolve_authconfig(None if host == DOCKER_HUB else host) or {}
    except (DockerException, OSError, ValueError):
        return None
    if not found:
        found = _plain_fields(host)
    # `auths` entries come back as username/password, a helper's as Username/Password.
    user = found.get("username") or found.get("Username")
    password = found.get("password") or found.get("Password")
    return (str(user), str(password)) if user and password is not None else None


def _plain_fields(host: str) -> dict[str, Any]:
    """The Docker CLI also takes plain username/password fields in `auths`, which the SDK skips."""
    from docker.utils.config import find_config_file

    try:
        raw = json.loads(Path(find_config_file() or "").read_text())
        entry = raw["auths"][host]
        return {"username": entry.get("username"), "password": entry.get("password")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


class RegistryClient:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.session = requests.Session()
        # Passed on every call: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self._verify: str | bool = endpoint.ca_file or True
        self._base: str | None = None
        self._tokens: dict[str, str] = {}   # one bearer token per scope
        self._basic = False
        self._creds: tuple[str, str] | None = (
            (endpoint.username, endpoint.password) if endpoint.username and endpoint.password
            else docker_credentials(endpoint.host))

    # -- transport -----------------------------------------------------------------

    @property
    def base(self) -> str:
        if self._base is None:
            self._base = self._probe_scheme()
        return self._base

    def _probe_scheme(self) -> str:
        host = self.endpoint.api_host
        if not (self.endpoint.insecure or is_loopback(host)):
            return f"https://{host}"
        # Like Docker for insecure registries: HTTPS if the server speaks TLS, else plain
        # HTTP. A certificate it cannot verify is an error, never a reason to drop TLS.
        try:
            self.session.get(f"https://{host}/v2/", timeout=5, verify=self._verify)
            return f"https://{host}"
        except requests.exceptions.SSLError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise RegistryError(f"the TLS certificate of {host} is not trusted; give its CA with "
                                    f"registries: {{{host}: {{ca: FILE}}}} in the spec") from None
            return f"http://{host}"
        except requests.RequestException:
            return f"http://{host}"

    def _auth_headers(self, scope: str) -> dict[str, str]:
        token = self._tokens.get(scope)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self._basic and self._creds:
            raw = f"{self._creds[0]}:{self._creds[1]}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, _, params = challenge.partition(" ")
        fields = dict(_CHALLENGE.findall(params))
        if scheme.lower() == "basic":
            if not self._creds:
                raise RegistryError(f"{self.endpoint.host} requires a login; run `docker login "
                                    f"{self.endpoint.host}` or configure credentials")
            self._basic = True
            return
        if scheme.lower() != "bearer" or "realm" not in fields:
            raise RegistryError(f"{self.endpoint.host}: unsupported authentication challenge {challenge!r}")
        query = {"service": fields.get("service", ""), "scope": scope}
        auth = self._creds if self._creds else None
        try:
            resp = self.session.get(fields["realm"], params=query, auth=auth, timeout=self.endpoint.timeout,
                                    verify=self._verify)
        except requests.RequestException as exc:
            raise RegistryError(f"token service {fields['realm']} unreachable: {exc}") from None
        if resp.status_code != 200:
            raise RegistryError(f"{self.endpoint.host}: token service refused scope {scope} "
                                f"(HTTP {resp.status_code}); check the credentials")
        body = resp.json() if resp.content else {}
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"{self.endpoint.host}: token service returned no token")
        self._tokens[scope] = str(token)

    def request(self, method: str, url: str, scope: str, *, ok: tuple[int, ...] = (200,),
                headers: dict[str, str] | None = None, body: bytes | BinaryIO | None = None,
                stream: bool = False, what: str = "") -> requests.Response:
        """One API call with auth, bounded retries (exponential backoff) and clear errors."""
        if not url.startswith("http"):
            url = self.base + url
        attempts, authed = self.endpoint.attempts, False
        attempt = 0
        while True:
            attempt += 1
            if body is not None and not isinstance(body, bytes):
                body.seek(0)  # a retried upload starts again from the beginning of the file
            try:
                all_headers = {**(headers or {}), **self._auth_headers(scope)}
                resp = self.session.request(method, url, headers=all_headers, data=body, stream=stream,
                                            timeout=self.endpoint.timeout, verify=self._verify)
            except requests.ConnectionError as exc:
                refused = "refused" in str(exc).lower()
                if attempt >= (2 if refused else attempts):
                    raise RegistryError(f"cannot reach registry {self.endpoint.host}: "
                                        f"{'connection refused' if refused else exc}") from None
                time.sleep(0.25 * 2 ** attempt)
                continue
            except requests.RequestException as exc:
                if attempt >= attempts:
                    raise RegistryError(f"registry {self.endpoint.host}: {exc}") from None
                time.sleep(0.25 * 2 ** attempt)
                continue
            if resp.status_code == 401 and not authed:
                authed = True
                self._authenticate(resp.headers.get("WWW-Authenticate", ""), scope)
                attempt -= 1
                continue
            if resp.status_code in _RETRY_STATUS and attempt < attempts:
                resp.close()
                time.sleep(0.25 * 2 ** attempt)
                continue
            if resp.status_code in ok:
                return resp
            body_text = resp.text if not stream else ""
            detail = body_text[:200].strip()
            resp.close()
            # CNCF Distribution reports a full disk as a Go PathError: "Err":28 is ENOSPC.
            if "no space left on device" in body_text.lower() or '"Err":28' in body_text.replace(" ", ""):
                raise RegistryError(f"the disk of registry {self.endpoint.host} is full (no space left on device "
                                    f"during {method} {what or url}); free space there and run again")
            if resp.status_code == 404:
                raise NotFoundError(f"{what or url} not found on {self.endpoint.host}")
            if resp.status_code in (401, 403):
                raise RegistryError(f"{self.endpoint.host} denied access to {what or url} "
                                    f"(HTTP {resp.status_code}); check the credentials")
            kind = RegistryServerError if resp.status_code >= 500 else RegistryError
            raise kind(f"{self.endpoint.host}: {method} {what or url} failed with HTTP {resp.status_code} {detail}")

    # -- reading --------------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str) -> tuple[Descriptor, bytes]:
        """Fetch a manifest or index by tag or digest and verify its digest."""
        what = f"{repo}:{reference}" if not reference.startswith("sha256:") else f"{repo}@{reference}"
        resp = self.request("GET", f"/v2/{repo}/manifests/{reference}", f"repository:{repo}:pull",
                            headers={"Accept": ACCEPT}, stream=True, what=what)
        with resp:
            body = resp.raw.read(MAX_MANIFEST_BYTES + 1, decode_content=True)
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"{what}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
        digest = sha256_digest(body)
        expected = reference if reference.startswith("sha256:") else resp.headers.get("Docker-Content-Digest")
        if expected and expected != digest:
            raise RegistryError(f"{what}: registry sent a manifest with digest {digest}, expected {expected}")
        media_type = media_type_of(body, resp.headers.get("Content-Type", "").split(";")[0], what)
        return Descriptor(media_type, digest, len(body)), body

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[BinaryIO]:
        """A streaming response body; the caller hashes it while reading (see Layout.ingest)."""
        resp = self.request("GET", f"/v2/{repo}/blobs/{desc.digest}", f"repository:{repo}:pull",
                            stream=True, what=f"blob {desc.digest} of {repo}")
        with resp:
            resp.raw.decode_content = True
            yield cast(BinaryIO, resp.raw)

    def has_blob(self, repo: str, digest: str) -> bool:
        """False also when the registry cannot tell (5xx): CNCF Distribution answers 500 for a
        blob whose link file a full disk left empty, and only uploading it again repairs that.
        An upload of a blob the registry has is harmless."""
        try:
            self.request("HEAD", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull", what=digest)
        except (NotFoundError, RegistryServerError):
            return False
        return True

    def tags(self, repo: str) -> list[str]:
        resp = self.request("GET", f"/v2/{repo}/tags/list", f"repository:{repo}:pull", what=repo)
        tags: Any = resp.json().get("tags") or []
        return sorted(str(t) for t in tags)

    # -- writing --------------------------------------------------------------------

    def push_blob(self, repo: str, desc: Descriptor, src: BinaryIO) -> None:
        """Monolithic upload streamed from a seekable file (the caller skips blobs the
        registry has: bundler/oci/copy.py)."""
        scope = f"repository:{repo}:pull,push"
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope, ok=(202,), what=f"upload to {repo}")
        location = resp.headers.get("Location", "")
        if not location:
            raise RegistryError(f"{self.endpoint.host}: upload to {repo} returned no Location")
        if location.startswith("/"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        try:
            self.request("PUT", f"{location}{sep}digest={desc.digest}", scope, ok=(201,), body=src,
                         headers={"Content-Type": "application/octet-stream", "Content-Length": str(desc.size)},
                         what=f"blob {desc.digest}")
        except NotFoundError:
            raise RegistryError(f"{self.endpoint.host} lost the upload of blob {desc.digest} (its upload session "
                                "vanished: is the registry's disk full?)") from None

    def mount_blob(self, repo: str, digest: str, source_repo: str) -> bool:
        """A cross-repository mount (distribution spec): 201 when the registry linked the blob,
        202 when it would rather have it uploaded (the upload session it opened is dropped)."""
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source_repo}",
                            f"repository:{repo}:pull,push", ok=(201, 202), what=f"mount of {digest} into {repo}")
        resp.close()
        return resp.status_code == 201

    def push_manifest(self, repo: str, reference: str, desc: Descriptor, body: bytes) -> None:
        self.request("PUT", f"/v2/{repo}/manifests/{reference}", f"repository:{repo}:pull,push",
                     ok=(201,), body=body, headers={"Content-Type": desc.media_type},
                     what=f"manifest {repo}:{reference}")
