"""The path check: a value meant to name a file inside the workspace.

Judged after normalising it the ways a tool or an operating system might: every stage of
percent-decoding (`%252e%252e` is `..` after two decodings), Unicode NFKC (fullwidth dots and
slash are `../`), both separators (`/` and `\\`). Refused in any of those forms:

- NUL and other control characters; leading or trailing whitespace (a tool that strips it would
  see another path: ` /etc/passwd` is absolute);
- `..` components (also `..` followed by dots or spaces, which Windows trims);
- `~` (home directory expansion), drive letters and UNC names (`C:\\`, `\\\\server\\share`);
- absolute paths without configured roots; with roots, any path whose resolved location
  (symlinks followed) leaves every root.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Final

from callgate.gate.middleware.sanitize.config import SanitizeConfig, percent_decodings, too_long

_SEPARATORS: Final = re.compile(r"[\\/]+")
_DRIVE: Final = re.compile(r"[A-Za-z]:")


def detect_path(value: str, config: SanitizeConfig) -> str | None:
    """Why `value` may leave the workspace, or None."""
    if problem := too_long(value, "path", config):
        return problem
    stages = percent_decodings(value)
    if stages is None:
        return "is percent-encoded too many times"
    forms: list[str] = []
    for stage in stages:
        for form in (stage, unicodedata.normalize("NFKC", stage)):
            if form not in forms:
                forms.append(form)
    for form in forms:
        if problem := _form_problem(form, config):
            return problem
    return None


def _form_problem(form: str, config: SanitizeConfig) -> str | None:
    for ch in form:
        if ch == "\x00":
            return "contains a NUL byte"
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"contains a control character (U+{ord(ch):04X})"
    if form != form.strip():
        return "begins or ends with whitespace"
    parts = _SEPARATORS.split(form)
    if any(".." in p and not p.strip(". ;") for p in parts):  # Windows trims; `..;` (Tomcat)
        return "contains '..' (directory traversal)"
    if form.startswith("~"):
        return "starts with '~' (home directory expansion)"
    is_abs = form.startswith(("/", "\\")) or bool(_DRIVE.match(form))
    if not config.path_roots:
        if is_abs:
            return "is an absolute path; give a path relative to the workspace"
        return None
    if _DRIVE.match(form) or form.startswith("\\"):
        return "is outside the allowed directories"
    return _outside_roots(form, is_abs, config.path_roots)


def _outside_roots(form: str, is_abs: bool, path_roots: tuple[str, ...]) -> str | None:
    roots = [Path(os.path.realpath(r)) for r in path_roots]
    target = Path(form) if is_abs else roots[0] / form
    resolved = Path(os.path.realpath(target))  # follows the symlinks that exist
    if any(resolved == r or r in resolved.parents for r in roots):
        return None
    if is_abs:
        return "is outside the allowed directories"
    return "resolves outside the allowed directories (symlink escape)"
