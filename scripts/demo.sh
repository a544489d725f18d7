#!/usr/bin/env bash
# The main job, end to end on examples/hello: set up, make the images, start a vendor
# registry, generate a key, build the signed bundle, inspect it, verify it, and show
# that a damaged copy is refused.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
export PATH="$here/.venv/bin:$PATH"
work=${SATCHEL_DEMO_DIR:-$(mktemp -d /tmp/satchel-demo.XXXXXX)}
mkdir -p "$work"
port=5001
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "vendor registry on 127.0.0.1:$port"
if ! curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then
  mkdir -p "$work/registry"
  cat > "$work/registry/config.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry/data}}
http: {addr: 127.0.0.1:$port}
YAML
  docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
  registry_pid=$!
  trap 'kill $registry_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
fi

step "make the example images (busybox-static, no internet)"
"$here/examples/hello/make-images.sh" 1.0.0 "127.0.0.1:$port"

step "satchel keygen"
[ -f "$work/acme.key" ] || satchel keygen --out "$work/acme"

step "satchel build"
satchel build "$here/examples/hello/satchel.yaml" -o "$work/hello-1.0.0.bundle" --key "$work/acme.key" \
  --cache "$work/cache"

step "satchel inspect"
satchel inspect "$work/hello-1.0.0.bundle"

step "satchel verify"
satchel verify "$work/hello-1.0.0.bundle" --key "$work/acme.pub"

step "plain tools can read it: zstd -dc | tar -t"
zstd -dc "$work/hello-1.0.0.bundle" | tar -t > "$work/members.txt"
head -5 "$work/members.txt"

step "a damaged copy is refused (exit 3)"
cp "$work/hello-1.0.0.bundle" "$work/damaged.bundle"
size=$(stat -c %s "$work/damaged.bundle")
printf '\xff' | dd of="$work/damaged.bundle" bs=1 seek=$((size / 2)) conv=notrunc status=none
set +e
satchel verify "$work/damaged.bundle" --key "$work/acme.pub"
code=$?
set -e
[ "$code" -eq 3 ] || { echo "expected exit 3, got $code" >&2; exit 1; }

step "done: bundle, keys and cache are in $work"
