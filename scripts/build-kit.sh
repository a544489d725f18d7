#!/usr/bin/env bash
# Build the customer kit: dist/satchel-VERSION-linux-amd64, one executable carrying its own
# Python, every dependency, Docker Compose, the registry and helm; plus dist/SHA256SUMS and,
# with --key VENDOR.key, dist/SHA256SUMS.sig. Installs what the build needs (setup.sh).
# Options go to `python -m bundler.kit.build` (--out DIR, --work DIR, --key FILE, --level N).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || exec sudo -E "$0" "$@"
"$here/scripts/setup.sh"
cd "$here"
exec "$here/.venv/bin/python" -m bundler.kit.build "$@"
