"""Helm post-renderer: every `image:` in the rendered manifests (containers, init and
ephemeral containers, CronJobs, images hard-coded in templates) is rewritten to the local
registry by digest; an image the bundle does not carry stops the deployment.

Helm runs it as `python -m installer.targets.postrender IMAGES.json` with the manifests on
standard input and takes standard output."""

from __future__ import annotations

import json
import sys

import yaml

from bundler.errors import BundleError, SpecError
from bundler.image_fields import map_images
from bundler.oci.refs import Reference


def _map(value: str, images: dict[str, str], local: set[str]) -> str:
    if value in local:
        return value
    try:
        key = str(Reference.parse(value))
    except SpecError:
        raise BundleError(f"the chart renders an invalid image reference {value!r}") from None
    if key not in images:
        raise BundleError(f"the chart needs image {value}, which the bundle does not carry")
    return images[key]


def rewrite(manifests: str, images: dict[str, str]) -> str:
    docs = [d for d in yaml.safe_load_all(manifests) if d is not None]
    local = set(images.values())
    for doc in docs:
        map_images(doc, lambda value: _map(value, images, local))
    return yaml.safe_dump_all(docs, sort_keys=False)


def main(argv: list[str]) -> int:
    try:
        with open(argv[1]) as fh:
            images = json.load(fh)
        sys.stdout.write(rewrite(sys.stdin.read(), images))
    except (BundleError, OSError, ValueError, yaml.YAMLError) as exc:
        print(f"satchel post-renderer: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
