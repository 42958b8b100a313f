"""Athlete PINs: scrypt with a per-athlete salt. The hub publishes only the hash; a console
checks a typed PIN against it.

A 4–8 digit PIN is no secret against someone who can read the broker's roster and spend
minutes of CPU (10^4 guesses × ~50 ms): it keeps one athlete from signing in as another at
a console. The broker's ACL (config/mosquitto/acl.example) decides who can read the roster.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

#: scrypt cost: ~50 ms per check on this machine's class of CPU (slows guessing, not athletes).
_N, _R, _P = 2**14, 8, 1
PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")


class PinFormatError(ValueError):
    """A PIN that is not 4 to 8 digits."""


def hash_pin(pin: str, salt: bytes | None = None) -> tuple[str, str]:
    """(salt_hex, scrypt_hex) of a PIN of 4–8 digits."""
    if not PIN_PATTERN.match(pin):
        raise PinFormatError("a PIN is 4 to 8 digits")
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return salt.hex(), digest.hex()


def check_pin(pin: str, salt_hex: str, scrypt_hex: str) -> bool:
    """True when `pin` is the one hashed (constant-time comparison)."""
    if not PIN_PATTERN.match(pin):
        return False
    digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt_hex), n=_N, r=_R, p=_P, dklen=32)
    return hmac.compare_digest(digest.hex(), scrypt_hex)
