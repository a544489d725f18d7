"""Customer side of Satchel: install, roll back and report on bundles."""
