"""Typed errors of the signing package, one class per cause."""


class SigningError(Exception):
    """Base of every error raised by `signing`."""


class KeyFileError(SigningError):
    """A key file is missing, unreadable or not a supported key."""


class TrustError(SigningError):
    """The signed payload must not be trusted."""


class MalformedError(TrustError):
    """The signed payload or its signatures are not well-formed."""


class UnsignedError(TrustError):
    """There is no signature at all."""


class UntrustedKeyError(TrustError):
    """No signature was made by a trusted key."""


class BadSignatureError(TrustError):
    """A signature claims a trusted key but does not verify."""


class ExpiredError(TrustError):
    """The payload's validity has ended."""


class DowngradeError(TrustError):
    """The bundle's version is lower than the installed one."""
