"""Token format and hashing, shared by agent tokens and user API tokens.

A token reads ``<prefix>_<key>_<secret>``: the prefix says what it is for
(``wfa`` agent, ``wfu`` user API) so a leaked one is recognisable in logs
and secret scanners; the 12-character key is stored in clear to find the
row; only an HMAC-SHA256 of the whole token, keyed with a server-side
pepper, is stored, so a database dump does not hand out working tokens.
Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import NamedTuple

from django.conf import settings

KEY_LENGTH = 12
SECRET_BYTES = 24


class ParsedToken(NamedTuple):
    prefix: str
    key: str


def _pepper() -> bytes:
    pepper = settings.WSGI_FLEET.get("TOKEN_PEPPER") or "wsgi-fleet-token:" + settings.SECRET_KEY
    return pepper.encode()


def digest(token: str) -> str:
    return hmac.new(_pepper(), token.encode(), hashlib.sha256).hexdigest()


def generate(prefix: str) -> tuple[str, str]:
    """A new token and its lookup key."""
    key = secrets.token_hex(KEY_LENGTH // 2)
    return f"{prefix}_{key}_{secrets.token_urlsafe(SECRET_BYTES)}", key


def parse(token: str) -> ParsedToken | None:
    """The prefix and key of a well-formed token; None for anything else."""
    parts = token.split("_", 2)
    if len(parts) != 3 or len(parts[1]) != KEY_LENGTH or not parts[2] or len(token) > 200:
        return None
    return ParsedToken(parts[0], parts[1])


def matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(token), stored_digest)
