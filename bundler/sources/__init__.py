"""Image sources for `satchel build`: registry, Docker engine, OCI layout, docker-save archive, directory."""
