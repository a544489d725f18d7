#!/usr/bin/env bash
# Make the example's images without internet: a busybox-static root filesystem, imported
# into the local Docker engine; the web image is also pushed to the vendor registry.
# Usage: make-images.sh VERSION [REGISTRY]   (REGISTRY defaults to 127.0.0.1:5001)
set -euo pipefail
version=${1:?usage: make-images.sh VERSION [REGISTRY]}
registry=${2:-127.0.0.1:5001}
busybox=$(command -v busybox)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/www" "$work/rootfs/tmp"
cp "$busybox" "$work/rootfs/bin/busybox"
echo "<h1>hello $version</h1>" > "$work/rootfs/www/index.html"
tar -C "$work/rootfs" --sort=name --owner=0 --group=0 --mtime=@0 -cf "$work/rootfs.tar" .
docker import "$work/rootfs.tar" "acme/hello-web:$version" >/dev/null
docker tag "acme/hello-web:$version" "$registry/acme/hello-web:$version"
docker push -q "$registry/acme/hello-web:$version" >/dev/null
echo "worker $version" > "$work/rootfs/www/index.html"
tar -C "$work/rootfs" --sort=name --owner=0 --group=0 --mtime=@0 -cf "$work/rootfs.tar" .
docker import "$work/rootfs.tar" "acme/hello-worker:$version" >/dev/null
echo "made acme/hello-web:$version (pushed to $registry) and acme/hello-worker:$version"
