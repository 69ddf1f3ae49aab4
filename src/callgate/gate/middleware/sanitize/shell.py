"""The shell check: a value meant to be one argv element of a command run without a shell.

Tools should pass it in an argument list (`subprocess.run([...])`, never `shell=True`); the check
refuses what would still hurt there or if the value ever reached a shell string:

- option injection: a positional value that starts with a dash (`--output=/etc/passwd`, `-o/x`,
  `-`), after Unicode normalisation (a fullwidth hyphen is a hyphen); allowed only when the
  config says the parameter carries options (`shell_allow_options`);
- expansions a shell performs: `$NAME`, `${...}`, `$(...)`, `$((...))`, `$'...'`, backticks, a
  leading `~`;
- command separators, pipes and redirections (`; | & > <`), and every line separator or
  control character (a newline ends a command).

A `$` before a digit or a space (`price is $5`) is left alone: it expands nothing a model controls.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from callgate.gate.middleware.sanitize.config import SanitizeConfig, too_long

_META: Final = (
    ("`", "a backtick (command substitution)"),
    (";", "';' (command separator)"),
    ("|", "'|' (pipe)"),
    ("&", "'&' (background / command chaining)"),
    (">", "'>' (redirection)"),
    ("<", "'<' (redirection)"),
)
_EXPANSION: Final = re.compile(r"\$(?:[A-Za-z_]\w{0,63}|[{(\[']|[@*#?$!-])")
_DASHES: Final = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"


def detect_shell(value: str, config: SanitizeConfig) -> str | None:
    """Why `value` is unsafe as one argv element, or None."""
    if problem := too_long(value, "shell", config):
        return problem
    text = unicodedata.normalize("NFKC", value)
    for ch in text:
        if ch in "\n\r" or ch in "\x85\u2028\u2029" or unicodedata.category(ch) in ("Cc", "Cf"):
            return f"contains a control or line-separator character (U+{ord(ch):04X})"
    m = _EXPANSION.search(text)
    if m:
        return f"contains a shell expansion ({m.group(0)!r})"
    for needle, what in _META:
        if needle in text:
            return f"contains shell metacharacter {what}"
    stripped = text.lstrip()
    if stripped.startswith("~"):
        return "starts with '~' (home directory expansion)"
    if stripped[:1] in _DASHES and not config.shell_allow_options:
        return "starts with '-' and would be read as an option, not a value (option injection)"
    return None
