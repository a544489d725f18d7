#!/usr/bin/env bash
# The main job, end to end on examples/hello: set up, make the images, start a vendor
# registry, generate a key, build the signed bundle, inspect it, verify it, and show
# that a damaged copy is refused.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# Docker and the registry need root: a non-root user runs the whole script through sudo.
[ "$(id -u)" -eq 0 ] || exec sudo -E "$0" "$@"
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

# One spec directory per version: 1.0.0 and 1.1.0 of the example, and a 1.2.0 whose
# health check always fails.
release() {
  local version=$1 dir="$work/hello-$1"
  rm -rf "$dir" && cp -r "$here/examples/hello" "$dir"
  sed -i "s/1\.0\.0/$version/g" "$dir/satchel.yaml" "$dir/compose.yaml"
  "$here/examples/hello/make-images.sh" "$version" "127.0.0.1:$port" >/dev/null
  [ "${2:-}" != broken ] || sed -i 's#"wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"#"false"#' \
    "$dir/compose.yaml"
  satchel -q build "$dir/satchel.yaml" -o "$work/hello-$version.bundle" --key "$work/acme.key" --cache "$work/cache"
  echo "built $work/hello-$version.bundle"
}

step "satchel keygen"
[ -f "$work/acme.key" ] || satchel keygen --out "$work/acme"

step "make the example images (busybox-static, no internet) and build 1.0.0, 1.1.0, 1.2.0 (broken)"
release 1.0.0
release 1.1.0
release 1.2.0 broken

step "satchel inspect"
satchel inspect "$work/hello-1.0.0.bundle"

step "satchel inspect --sbom: the packages of every image (Syft's CycloneDX SBOM, signed with the bundle)"
satchel inspect "$work/hello-1.0.0.bundle" --sbom --key "$work/acme.pub"

step "satchel sbom diff: what 1.1.0 changes, package by package"
satchel sbom diff "$work/hello-1.0.0.bundle" "$work/hello-1.1.0.bundle" --key "$work/acme.pub"

step "satchel verify"
satchel verify "$work/hello-1.0.0.bundle" --key "$work/acme.pub"

step "plain tools can read it: zstd -dc | tar -t"
zstd -dc "$work/hello-1.0.0.bundle" | tar -t > "$work/members.txt"
head -5 "$work/members.txt"

step "a damaged copy is refused (exit 3)"
cp "$work/hello-1.0.0.bundle" "$work/damaged.bundle"
size=$(stat -c %s "$work/damaged.bundle")
printf '\xff' | dd of="$work/damaged.bundle" bs=1 seek=$((size / 2)) conv=notrunc status=none
expect() { local want=$1; shift; set +e; "$@"; local got=$?; set -e
           [ "$got" -eq "$want" ] || { echo "expected exit $want, got $got" >&2; exit 1; }; }
expect 3 satchel verify "$work/damaged.bundle" --key "$work/acme.pub"

step "the customer kit: one executable with its own Python, Compose, registry and helm"
# Signed SHA256SUMS (--key) and the vendor key built in as the trust anchor (--trust).
"$here/scripts/build-kit.sh" --out "$work/dist" --work "$work/kit-build" --key "$work/acme.key" \
  --trust "$work/acme.pub"
kit=$(ls "$work"/dist/satchel-*-linux-amd64)

# The customer host: it runs only the kit (no venv on PATH from here), with its own state root
# and the managed registry on 127.0.0.1:5050 as a container that Docker restarts by itself.
export SATCHEL_ROOT="$work/root"
satchel() { "$kit" "$@"; }
cleanup_host() {
  docker ps -aq --filter label=com.docker.compose.project=hello | xargs -r docker rm -f >/dev/null
  docker network rm hello_default >/dev/null 2>&1 || true
  docker volume rm hello_ticks >/dev/null 2>&1 || true
  docker ps -aq --filter "label=io.satchel.root=$SATCHEL_ROOT" | xargs -r docker rm -f >/dev/null
}
trap 'cleanup_host; [ -z "${registry_pid:-}" ] || kill $registry_pid 2>/dev/null || true' EXIT

step "customer: check the kit before running it (plain tools, then the kit itself)"
(cd "$work/dist" && sha256sum -c SHA256SUMS)
openssl pkeyutl -verify -pubin -inkey "$work/acme.pub" -rawin -in "$work/dist/SHA256SUMS" \
  -sigfile "$work/dist/SHA256SUMS.sig"
satchel verify-kit "$kit" --key "$work/acme.pub"
satchel --version

step "customer: two files, one command: install 1.0.0 (the kit trusts its vendor's key)"
satchel install "$work/hello-1.0.0.bundle"
curl -fsS http://127.0.0.1:8080/

step "customer: trust the vendor key on this host for good"
satchel trust add "$work/acme.pub"

step "customer: the registry comes back by itself when its process dies"
registry=$(docker ps -q --filter "label=io.satchel.root=$SATCHEL_ROOT")
kill -9 "$(docker inspect -f '{{.State.Pid}}' "$registry")"
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:5050/v2/ >/dev/null 2>&1 && break; sleep 0.1; done
echo "registry answering again: $(docker inspect -f 'restarted {{.RestartCount}} time(s)' "$registry")"

step "customer: will 1.1.0 fit this host? (preflight: verifies, checks, changes nothing)"
satchel preflight "$work/hello-1.1.0.bundle"

step "customer: upgrade to 1.1.0"
satchel install "$work/hello-1.1.0.bundle"
curl -fsS http://127.0.0.1:8080/

step "customer: re-installing 1.1.0 is a quick no-op"
satchel install "$work/hello-1.1.0.bundle"

step "customer: 1.2.0 migrates the data, fails its health check, and 1.1.0 is restored with its data (exit 5)"
expect 5 satchel install "$work/hello-1.2.0.bundle" --timeout 15
curl -fsS http://127.0.0.1:8080/
worker=$(docker ps -q --filter label=com.docker.compose.project=hello --filter label=com.docker.compose.service=worker)
echo "the worker's data says: $(docker exec "$worker" /bin/busybox cat /data/schema)"
satchel snapshots

step "customer: a downgrade is refused (exit 3)"
expect 3 satchel install "$work/hello-1.0.0.bundle"

step "customer: manual rollback to the previous release"
satchel rollback
curl -fsS http://127.0.0.1:8080/

step "customer: status and history"
satchel status
satchel history

step "customer: a redacted diagnostics archive, encrypted to the vendor; the vendor opens it"
[ -f "$work/acme-support.age" ] || satchel diagnostics keygen --out "$work/acme-support"
satchel diagnostics -o "$work/diagnostics.tar.zst.age" --encrypt-to "$work/acme-support.age.pub"
satchel diagnostics open "$work/diagnostics.tar.zst.age" --identity "$work/acme-support.age" \
  --html "$work/diagnostics.html"

step "done: bundles, keys and state are in $work (the app is stopped on exit)"
