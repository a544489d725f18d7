"""Keys, signatures and trust decisions. Pure where it decides; no knowledge of bundles."""
