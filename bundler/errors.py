"""Errors by cause. The CLI maps each class to one exit code (see `installer.cli`)."""


class SatchelError(Exception):
    """Base of Satchel's own errors; the message is one line for the user."""


class SpecError(SatchelError):
    """The spec, a command-line argument or an input file is wrong (exit 2)."""


class BundleError(SatchelError):
    """The bundle is malformed, damaged or does not match its manifest (exit 3)."""


class EnvironmentProblem(SatchelError):
    """Something outside Satchel is missing or broken: registry, Docker, disk (exit 4)."""


class RegistryError(EnvironmentProblem):
    """A registry refused or failed a request."""


class RegistryServerError(RegistryError):
    """A registry answered with a server error (5xx) after the retries."""


class NotFoundError(RegistryError):
    """A registry or source does not have the requested manifest or blob."""
