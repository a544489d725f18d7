"""Every `image:` string in a tree of YAML documents (rendered Kubernetes manifests), read or
rewritten in place: `satchel build` finds the images a chart needs with it, the customer's
Helm post-renderer points them at the local registry with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def map_images(node: Any, change: Callable[[str], str]) -> None:
    """Replace each `image: STRING` under node with change(STRING), in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                node[key] = change(value)
            else:
                map_images(value, change)
    elif isinstance(node, list):
        for item in node:
            map_images(item, change)


def images_in(node: Any) -> list[str]:
    found: list[str] = []

    def keep(value: str) -> str:
        found.append(value)
        return value

    map_images(node, keep)
    return found
