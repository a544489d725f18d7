"""The state root as Satchel laid it out before applications had directories of their own:
everything of the one application at the top. Tests make one from a root of today's layout,
the way such a root is found on a customer host, to check that it is migrated in place."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

TOP_LEVEL = ("releases", "current", "journal", "config", "secrets", "reports", "history")


def to_single_app_layout(root: Path, name: str) -> None:
    app = root / "apps" / name
    for item in TOP_LEVEL:
        if (app / item).exists() or (app / item).is_symlink():
            os.replace(app / item, root / item)
    for info_file in (root / "releases").glob("*/release.json"):
        doc = json.loads(info_file.read_text())
        if doc.get("env_file"):
            doc["env_file"] = doc["env_file"].replace(str(app / "secrets"), str(root / "secrets"))
            info_file.write_text(json.dumps(doc, indent=2, sort_keys=True))
    shutil.rmtree(root / "apps")
