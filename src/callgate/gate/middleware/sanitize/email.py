"""The email check: a value meant to be exactly one recipient address.

Header injection is judged on the raw value first: every character that ends a line somewhere
(CR, LF, VT, FF, the file/group/record separators, NEL U+0085, U+2028, U+2029), also
percent-encoded, and every other control or invisible format character, wherever it stands
(leading and trailing ones included). Then the address is parsed by `email-validator` (syntax
only, no DNS): one address, no display name, no quoted local part, no IP-literal domain, no
single-label or internal domain (`localhost`, `.local`, `.internal`, ...). Optional domain
allow-list.

Needs the `sanitize` extra (email-validator).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final

from callgate.gate.middleware.sanitize.config import (
    EXTRA_HINT,
    SanitizeConfig,
    SanitizerUnavailable,
    host_matches,
    too_long,
)

_LINE_BREAKS: Final = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_ENCODED_BREAK: Final = re.compile(r"%(?:0[aAdD]|0[bBcC]|85|e2%80%a[89])", re.IGNORECASE)


def _validator() -> Any:
    try:
        import email_validator
    except ImportError as exc:
        raise SanitizerUnavailable(f"the email check needs email-validator: {EXTRA_HINT}") from exc
    return email_validator


def detect_email(value: str, config: SanitizeConfig) -> str | None:
    """Why `value` is not exactly one safe recipient address, or None."""
    if problem := too_long(value, "email", config):
        return problem
    for ch in value:
        if ch in _LINE_BREAKS:
            return f"contains a line break (U+{ord(ch):04X}, header injection)"
        if unicodedata.category(ch) in ("Cc", "Cf"):
            return f"contains a control or invisible character (U+{ord(ch):04X})"
    if _ENCODED_BREAK.search(value):
        return "contains an encoded line break (header injection)"
    address = value.strip(" \t")
    if any(c in address for c in ",;<>") or any(c.isspace() for c in address):
        return "must be exactly one email address"
    ev = _validator()
    try:
        checked = ev.validate_email(
            address,
            check_deliverability=False,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            globally_deliverable=False,  # deliverability is not injection:
            test_environment=True,  # `.test` addresses pass (internal names are refused below)
        )
    except ev.EmailNotValidError as exc:
        return f"is not a valid email address ({exc})"
    if len(str(checked.local_part)) > 64:
        return "is not a valid email address (the part before @ is longer than 64 characters)"
    domain = str(checked.ascii_domain).lower()
    if "." not in domain or host_matches(domain, config.url_blocked_domains):
        return f"domain {domain!r} is an internal name"
    if config.email_domains is not None and not host_matches(domain, config.email_domains):
        return f"domain {domain!r} is not an allowed recipient domain"
    return None
