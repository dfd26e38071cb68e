"""Token format and hashing, shared by agent tokens and user API tokens.

A token reads ``<prefix>_<key>_<secret>``: the prefix says what it is for
(``wfa`` agent, ``wfu`` user API) so a leaked one is recognisable in logs
and secret scanners; the 12-character key is stored in clear to find the
row; only an HMAC-SHA256 of the whole token, keyed with a server-side
*pepper*, is stored, so a database dump does not hand out working tokens.
Comparison is constant-time.

The peppers are a setting of their own (``WSGI_FLEET_TOKEN_PEPPERS``,
``id=secret`` pairs, newest first; docs/tokens.md) and each hash is stored
with the id of the pepper it was made with. The newest pepper hashes new
tokens; every configured one verifies; a token verified under an older one
is hashed again under the newest (``Token.authenticate``), so a pepper is
rotated by adding a new one in front and removing the old once no token
uses it, without revoking anything. SECRET_KEY is no longer part of it.

``LEGACY`` (``secret-key``) is the id of the hashes made before peppers had
ids: keyed with ``WSGI_FLEET_TOKEN_PEPPER`` when that was set, else with
SECRET_KEY (its fallbacks too, so a SECRET_KEY rotation done Django's way
keeps them). It verifies, and issues only while no pepper is configured
(the demo; ``manage.py check --deploy`` warns about it in production).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import NamedTuple

from django.conf import settings

KEY_LENGTH = 12
SECRET_BYTES = 24
#: The pepper id of hashes keyed with SECRET_KEY (or the old single WSGI_FLEET_TOKEN_PEPPER).
LEGACY = "secret-key"


class ParsedToken(NamedTuple):
    prefix: str
    key: str


def configured() -> dict[str, str]:
    """The configured peppers, id -> secret, newest first (settings.WSGI_FLEET["TOKEN_PEPPERS"])."""
    return dict(settings.WSGI_FLEET.get("TOKEN_PEPPERS") or {})


def current_id() -> str:
    """The id of the pepper new tokens are hashed with: the newest configured, else LEGACY."""
    return next(iter(configured()), LEGACY)


def _keys(pepper_id: str) -> list[bytes]:
    """The HMAC keys a hash made under ``pepper_id`` may have been made with; [] when unknown."""
    if pepper_id == LEGACY:
        old = settings.WSGI_FLEET.get("TOKEN_PEPPER")
        keys = [old] if old else []
        keys += ["wsgi-fleet-token:" + k for k in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]]
        return [k.encode() for k in keys]
    secret = configured().get(pepper_id)
    return [secret.encode()] if secret else []


def _hmac(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def digest(token: str) -> tuple[str, str]:
    """(pepper id, hash) of ``token`` under the current pepper."""
    pepper_id = current_id()
    return pepper_id, _hmac(_keys(pepper_id)[0], token)


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


def matches(token: str, stored_digest: str, pepper_id: str) -> bool:
    """Whether ``token`` hashes to ``stored_digest`` under the pepper ``pepper_id`` (every key
    of it is tried, so the time does not say which); False for a pepper that is not configured."""
    found = False
    for key in _keys(pepper_id):
        found |= hmac.compare_digest(_hmac(key, token), stored_digest)
    return found
