"""Customer-side errors by cause (exit codes in installer.cli)."""

from bundler.errors import EnvironmentProblem, SatchelError


class LockHeld(EnvironmentProblem):
    """Another Satchel command holds the root's lock (exit 4)."""


class DeployFailedRestored(SatchelError):
    """The new release failed; the previous one was restored (exit 5)."""


class DeployFailedUnrestored(SatchelError):
    """The new release failed and so did restoring the previous one (exit 6)."""
