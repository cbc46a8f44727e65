"""Failed logins per account: slowed down, never locked out.

The per-address limit (dashboard/hardening.py) does not stop a guesser with many addresses.
So failures are also counted per name typed in the form (whether or not such a user exists, so
the throttle says nothing about which names exist; the name is hashed before it is stored):
after ``[auth] login_account_failures`` failures within ``WINDOW_S``, each further failure
makes the next attempt for that name wait ``FIRST_WAIT_S`` doubled each time, up to
``MAX_WAIT_S`` (429 with Retry-After; a refused attempt is not checked and not counted).
A hard lock-out would let anyone lock the admin out; instead an address that logged in to the
account before (remembered by Accounts as a keyed hash) is not made to wait: the right password
from there still works.

The counters live in the limiter's storage: the ``message_queue`` Redis shared by the web
instances when configured, else memory; while that Redis is unreachable, in memory (the
per-address limit does the same). Addresses count as IPv4 address or IPv6 /64: one host
usually holds a whole /64, so counting single IPv6 addresses would let it rotate freely.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from typing import Any, Callable

from limits.storage import MemoryStorage, Storage

from dashboard.auth.accounts import Accounts, login_name

log = logging.getLogger(__name__)

WINDOW_S = 86400
FIRST_WAIT_S = 5
MAX_WAIT_S = 900
RETRY_SHARED_S = 60.0          # after the shared storage failed, use memory this long


def client_key(addr: str | None) -> str:
    """What a per-address limit counts by: an IPv4 address (also IPv4-mapped IPv6) or an IPv6
    /64 network; anything else as given."""
    text = (addr or "").partition("%")[0]               # an IPv6 zone (fe80::1%eth0)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return addr or ""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


class LoginThrottle:
    def __init__(self, storage: Storage, accounts: Accounts, secret: bytes,
                 free_failures: int, key_prefix: str = "dashboard-logins") -> None:
        self._shared = storage
        self._memory = MemoryStorage()
        self._shared_failed_at = -math.inf
        self._accounts = accounts
        self._secret = secret
        self.free_failures = free_failures
        self._prefix = key_prefix

    def wait_s(self, name: str, addr: str | None) -> int:
        """Seconds an attempt for ``name`` from ``addr`` must wait; 0: check the password."""
        key = self._key("wait", name)
        if not self._call(lambda s: s.get(key)):
            return 0
        user = self._accounts.user_by_name(login_name(name))
        if user is not None and self._accounts.knows_address(user.id, self._tag(user.id, addr)):
            return 0
        left = self._call(lambda s: s.get_expiry(key)) - time.time()
        return max(1, math.ceil(left))

    def failed(self, name: str) -> int:
        """Count a wrong password for ``name``; returns the wait it starts (0: none yet)."""
        n = self._call(lambda s: s.incr(self._key("failed", name), WINDOW_S))
        over = n - self.free_failures
        if over <= 0:
            return 0
        wait = min(MAX_WAIT_S, FIRST_WAIT_S << min(over - 1, 20))
        key = self._key("wait", name)
        self._call(lambda s: (s.clear(key), s.incr(key, wait)))
        return wait

    def succeeded(self, user_id: int, addr: str | None) -> None:
        """Remember ``addr`` as one this user logs in from."""
        self._accounts.remember_address(user_id, self._tag(user_id, addr))

    def _key(self, kind: str, name: str) -> str:
        digest = hashlib.sha256(login_name(name).encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self._prefix}/{kind}/{digest[:32]}"

    def _tag(self, user_id: int, addr: str | None) -> str:
        """Keyed: the store must not give away where people log in from."""
        msg = f"{user_id}|{client_key(addr)}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def _call(self, op: Callable[[Storage], Any]) -> Any:
        if time.monotonic() - self._shared_failed_at >= RETRY_SHARED_S:
            try:
                return op(self._shared)
            except Exception:  # noqa: BLE001 - Redis down: logins must still answer
                log.warning("login throttle storage unreachable; counting in memory for %ds",
                            RETRY_SHARED_S)
                self._shared_failed_at = time.monotonic()
        return op(self._memory)
