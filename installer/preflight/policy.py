"""Every grant over the host the compose files ask for (read from the verified files, not from
what the manifest says of them), judged by the site policy."""

from __future__ import annotations

from collections.abc import Iterator

from bundler.grants import grants_of

from .. import policy
from ..truststore import TrustStore
from .model import Context, Result

STAGE = "content"


def check(ctx: Context) -> Iterator[Result]:
    site = policy.load(TrustStore(ctx.host.trust))
    for grant in grants_of(ctx.compose):
        allowed = site.allows(grant)
        yield Result(f"grant {grant.line()}", allowed, "allowed by the site policy",
                     "allowed" if allowed else "forbidden by the site policy",
                     "ask the vendor for a bundle without it, or change the policy (satchel policy)")
