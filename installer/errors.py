"""Customer-side errors by cause (exit codes in installer.cli)."""

from bundler.errors import EnvironmentProblem, SatchelError


class LockHeld(EnvironmentProblem):
    """Another Satchel command holds the root's lock (exit 4)."""


class StoreDamaged(EnvironmentProblem):
    """A stored blob does not hash to its name, or a kept release's blob is gone (exit 4)."""

    FIX = "repair it from the bundle that carries it: satchel store verify --repair BUNDLE"


class DeployFailedRestored(SatchelError):
    """The new release failed; the previous one was restored (exit 5)."""


class DeployFailedUnrestored(SatchelError):
    """The new release failed and so did restoring the previous one (exit 6)."""
