"""The web's secrets and guards: the signing key, signed cookies, digests of tokens, CSRF tokens
and the trusted single sign-on proxies. Nothing here logs a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from opsaudit.errors import ConfigError, os_reason, setting_error
from opsaudit.i18n.render import Message
from opsaudit.settings import Settings

SECRET_FILE = "web-secret"


def signing_key(settings: Settings) -> bytes:
    """OPSAUDIT_WEB_SECRET, or the key generated once and kept (owner-only) in the data dir."""
    if settings.web_secret is not None:
        return settings.web_secret.get_secret_value().encode()
    path = settings.data_dir.expanduser() / SECRET_FILE
    try:
        return path.read_bytes().strip() or _generate(path)
    except FileNotFoundError:
        return _generate(path)
    except OSError as exc:
        raise ConfigError(Message.of("error.web.signing_key", path=str(path), reason=os_reason(exc))) from None


def _generate(path: Path) -> bytes:
    """A new key, created exclusively so two processes starting at once keep the same one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def digest(token: str) -> str:
    """What the store keeps of a token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def mac(key: bytes, purpose: str, value: str) -> str:
    """An HMAC of value for one purpose, so a signature made for one use is worth nothing in another."""
    signed = hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signed).decode().rstrip("=")


def sign(key: bytes, purpose: str, value: str) -> str:
    return f"{value}.{mac(key, purpose, value)}"


def unsign(key: bytes, purpose: str, signed: str | None) -> str | None:
    """The value of a signed cookie, or None when it is missing or forged."""
    if not signed or "." not in signed:
        return None
    value, _, signature = signed.rpartition(".")
    return value if hmac.compare_digest(signature, mac(key, purpose, value)) else None


def same(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def trusted_networks(settings: Settings) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """OPSAUDIT_WEB_TRUSTED_PROXIES as networks (a bare address is a network of one)."""
    networks = []
    for part in (settings.web_trusted_proxies or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise setting_error("OPSAUDIT_WEB_TRUSTED_PROXIES",
                                    Message.of("error.web.not_a_network", value=part.strip())) from None
    return tuple(networks)


def is_trusted(client: str | None, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    if not client or not networks:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in network for network in networks)
