#!/usr/bin/env bash
# Everything Satchel's demo, kit build and tests need on a fresh Debian host, installed only
# if missing: Docker engine, CNCF Distribution registry, skopeo, zstd, busybox-static, gcc
# and libzstd-dev (the kit's launcher), Chromium (the tests look at the diagnostics report in
# it), a Python virtualenv with Satchel, its test tools and
# PyInstaller, helm, and a running dockerd.
# Works as root or through sudo. Safe to run again.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_apt=()
for pair in dockerd:docker.io docker-registry:docker-registry skopeo:skopeo zstd:zstd \
            busybox:busybox-static curl:curl gcc:gcc chromium:chromium haproxy:haproxy; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
# The kit's launcher links zstd statically.
[ -f /usr/include/zstd.h ] && ls /usr/lib/*/libzstd.a >/dev/null 2>&1 || need_apt+=(libzstd-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.satchel-installed"
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
  echo "setup: installing Satchel and its test tools into $venv" >&2
  log="$venv/pip.log"
  if ! { "$venv/bin/python" -m pip install -q --upgrade pip &&
         "$venv/bin/python" -m pip install -q -e "$here[test]"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: pip install failed (log above)" >&2
    exit 4
  fi
  touch "$stamp"
fi

command -v helm >/dev/null 2>&1 || PATH="$venv/bin:$PATH" $SUDO "$here/scripts/install-helm.sh" /usr/local/bin

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd" >&2
  $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/dockerd.log" >&2; exit 4; }
fi
