"""Injection checks on arguments that flow into dangerous sinks, before the tool runs.

A tool declares its sinks (`@tool(sinks={"query": "sql", "path": "path"})`); the `Sanitizer`
middleware checks those arguments (strings, or each string of a list) with one detector per kind
and refuses the call with `ToolDenied` naming the parameter and the problem. Detectors are plain
functions `(value, config) -> problem | None`; `register` adds or replaces one.

The built-in detectors look for *injection*, not for "unusual" input, so ordinary values pass:

- sql: a value meant to be one literal: stacked statements, a quote followed by SQL, comment
  sequences after a quote, tautologies (`' OR '1'='1`), `UNION SELECT`, time-based probes.
- shell: metacharacters `; | & $( ${ \\` > <`, newlines and NUL.
- path: `..` segments (also percent-encoded), NUL, `~`, absolute paths unless inside a configured
  root; with roots, the resolved path (symlinks followed) must stay inside one.
- url: scheme allow-list (http, https), no embedded credentials, no private, loopback,
  link-local, reserved or metadata hosts (including numeric forms like `http://2130706433/`),
  unless allowed; optional host allow-list and DNS resolution check.
- html: `<script>`, frames/objects/embeds, inline event handlers, `javascript:`/`vbscript:`/
  `data:text/html` URLs (also entity-encoded), CSS `expression(`.
- email: exactly one address, no CR/LF (header injection), optional domain allow-list.

Limits: these are guards in front of code that should still use parameterised queries, argument
lists instead of shell strings and proper escaping. They catch what a prompt-injected model is
likely to send, not every exotic encoding.
"""

from __future__ import annotations

import html
import ipaddress
import os
import re
import socket
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from callgate.errors import ToolDenied
from callgate.gate.protocols import Invocation, Next
from callgate.messages import ToolResult


@dataclass(frozen=True, slots=True)
class SanitizeConfig:
    """Settings the detectors read.

    - `path_roots`: directories paths must stay inside (relative paths resolve against the
      first). Without roots, absolute paths are refused.
    - `url_schemes`: allowed URL schemes.
    - `url_allow_hosts`: hosts allowed even if private/loopback (e.g. an internal API).
    - `url_only_hosts`: if set, the only hosts allowed ("example.com" also allows subdomains).
    - `url_resolve_dns`: also resolve host names and refuse those pointing at private addresses.
    - `email_domains`: if set, the only recipient domains allowed (subdomains included).
    """

    path_roots: tuple[str, ...] = ()
    url_schemes: frozenset[str] = frozenset({"http", "https"})
    url_allow_hosts: frozenset[str] = frozenset()
    url_only_hosts: frozenset[str] | None = None
    url_resolve_dns: bool = False
    email_domains: frozenset[str] | None = None


Detector = Callable[[str, SanitizeConfig], str | None]


# ------------------------------------------------------------------------------------ sql

_SQL_STACKED = re.compile(
    r";\s*(?:select\s+[\s\S]+?\bfrom\b|insert\s+into\b|update\s+\S+\s+set\b|delete\s+from\b|"
    r"drop\s+(?:table|database|schema|index|view|user|function)\b|alter\s+(?:table|user)\b|"
    r"create\s+(?:table|user|database|function|role)\b|truncate\s+|exec(?:ute)?\s+|shutdown\b|"
    r"grant\s+|revoke\s+|declare\s+@|copy\s+\S+|call\s+\w+\s*\()",
    re.IGNORECASE,
)
_SQL_QUOTE_BREAK = re.compile(
    r"['\"`]\s*(?:\)\s*)*(;|--|#(?=\s|$)|/\*|\|\||\b(?:or|and|union|select|insert|update|delete|"
    r"drop|exec|having|order\s+by|group\s+by|waitfor|into)\b)",
    re.IGNORECASE,
)
_SQL_CONTINUES = re.compile(r"=|<|>|\(|\blike\b|--|#|/\*|;|\bnull\b", re.IGNORECASE)
_SQL_TAUTOLOGY = re.compile(
    r"\b(?:or|and)\s+(?:not\s+)?(?:(['\"]?)(\w+)\1\s*(?:=|<>|!=|like)\s*(['\"]?)\2\3(?!\w)|"
    r"true\b|1\b)",
    re.IGNORECASE,
)
_SQL_UNION = re.compile(r"\bunion\b(?:\s+(?:all|distinct))?\s+select\b", re.IGNORECASE)
_SQL_COMMENT = re.compile(r"/\*[\s\S]*?\*/|(?:--|#)\s*$")
_SQL_PROBE = re.compile(
    r"\b(?:pg_sleep|sleep|benchmark|waitfor\s+delay|xp_cmdshell|load_file|utl_http|"
    r"dbms_pipe)\s*[\('\"]|\binto\s+(?:out|dump)file\b|\binformation_schema\.",
    re.IGNORECASE,
)


def detect_sql(value: str, config: SanitizeConfig) -> str | None:
    if _SQL_STACKED.search(value):
        return "contains a second SQL statement after ';' (stacked query)"
    if _SQL_UNION.search(value):
        return "contains UNION SELECT"
    for m in _SQL_QUOTE_BREAK.finditer(value):
        pos = m.start()
        if pos > 0 and value[pos - 1].isspace():
            continue  # an opening quote in ordinary text: `he said "or else"`
        if _is_name_apostrophe(value, pos):
            continue
        token = m.group(1)
        if not token[0].isalpha() or _SQL_CONTINUES.search(value, m.end()):
            return "closes a quoted literal and continues with SQL"
    if _SQL_TAUTOLOGY.search(value) and re.search(r"['\"=]", value):
        return "contains an always-true condition (tautology)"
    if _SQL_COMMENT.search(value) and re.search(r"['\";]", value):
        return "contains an SQL comment sequence"
    if _SQL_PROBE.search(value):
        return "contains a database function used in injection probes"
    return None


def _is_name_apostrophe(value: str, pos: int) -> bool:
    """`O'Brien and Sons`: an apostrophe between letters, not a closing quote."""
    return (
        0 < pos < len(value) - 1
        and value[pos] == "'"
        and value[pos - 1].isalpha()
        and (value[pos + 1].isalpha())
    )


# ---------------------------------------------------------------------------------- shell

_SHELL_META = (
    ("$(", "command substitution '$('"),
    ("${", "parameter expansion '${'"),
    ("`", "a backtick (command substitution)"),
    (";", "';' (command separator)"),
    ("|", "'|' (pipe)"),
    ("&", "'&' (background / command chaining)"),
    (">", "'>' (redirection)"),
    ("<", "'<' (redirection)"),
    ("\n", "a newline (command separator)"),
    ("\r", "a carriage return"),
    ("\x00", "a NUL byte"),
)


def detect_shell(value: str, config: SanitizeConfig) -> str | None:
    for needle, what in _SHELL_META:
        if needle in value:
            return f"contains shell metacharacter {what}"
    return None


# ----------------------------------------------------------------------------------- path


def detect_path(value: str, config: SanitizeConfig) -> str | None:
    if "\x00" in value:
        return "contains a NUL byte"
    decoded = unquote(unquote(value))
    for candidate in (value, decoded):
        parts = re.split(r"[\\/]+", candidate)
        if any(p.strip() == ".." for p in parts):
            return "contains '..' (directory traversal)"
    if value.startswith("~"):
        return "starts with '~' (home directory expansion)"
    is_abs = value.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:[\\/]", value))
    if not config.path_roots:
        if is_abs:
            return "is an absolute path; give a path relative to the workspace"
        return None
    roots = [Path(os.path.realpath(r)) for r in config.path_roots]
    target = Path(value) if is_abs else roots[0] / value
    resolved = Path(os.path.realpath(target))  # follows symlinks that exist
    if not any(resolved == r or r in resolved.parents for r in roots):
        if is_abs:
            return "is outside the allowed directories"
        return "resolves outside the allowed directories (symlink escape)"
    return None


# ------------------------------------------------------------------------------------ url

_BLOCKED_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "instance-data"})


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-FxX.]+", h) and re.search(r"\d", h):
        try:  # legacy forms browsers and libc accept: 2130706433, 0x7f.1, 0177.0.0.1, 127.1
            return ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return None
    return None


def _ip_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "points to a loopback address"
    if ip.is_link_local:
        return "points to a link-local address (cloud metadata lives there)"
    if ip.is_private:
        return "points to a private network address"
    if ip.is_unspecified or ip.is_reserved or ip.is_multicast:
        return "points to a reserved address"
    return None


def _host_matches(host: str, names: Iterable[str]) -> bool:
    return any(host == n or host.endswith("." + n) for n in names)


def detect_url(value: str, config: SanitizeConfig) -> str | None:
    if re.search(r"[\s\x00-\x1f\x7f]", value):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a bad port
    except ValueError:
        return "is not a valid URL"
    del port
    scheme = parts.scheme.lower()
    if scheme not in config.url_schemes:
        allowed = ", ".join(sorted(config.url_schemes))
        return f"uses scheme {scheme or '(none)'!r}; allowed: {allowed}"
    if "\\" in parts.netloc or "\\" in value.split("?")[0][: len(scheme) + 3 + len(parts.netloc)]:
        return "contains a backslash in the host part"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "contains credentials (user:password@host)"
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "has no host"
    if host in config.url_allow_hosts:
        return None
    if config.url_only_hosts is not None and not _host_matches(host, config.url_only_hosts):
        return f"host {host!r} is not in the allowed list"
    ip = _parse_ip(host)
    if ip is not None:
        problem = _ip_problem(ip)
        return f"{problem} ({host})" if problem else None
    if host in _BLOCKED_NAMES or host.endswith(_BLOCKED_SUFFIXES) or host in _METADATA_HOSTS:
        return f"points to an internal host name ({host})"
    if config.url_resolve_dns:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return f"host {host!r} does not resolve"
        for info in infos:
            resolved = _parse_ip(str(info[4][0]))
            if resolved is not None and (problem := _ip_problem(resolved)):
                return f"host {host!r} resolves to {resolved}, which {problem}"
    return None


# ----------------------------------------------------------------------------------- html

_HTML_TAG = re.compile(
    r"<\s*/?\s*(script|iframe|frame|frameset|object|embed|applet|base|meta|link|form|"
    r"svg|math|template)\b",
    re.IGNORECASE,
)
_HTML_HANDLER = re.compile(r"<[^>]*[\s/\"'](on[a-z]+)\s*=", re.IGNORECASE)
_HTML_BAD_URL = re.compile(r"(javascript|vbscript|livescript):|data:\s*text/html", re.IGNORECASE)
_HTML_EXPR = re.compile(r"expression\s*\(|-moz-binding|behavior\s*:", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\x00-\x20\u200b-\u200f\u2028\u2029\ufeff]+")


def detect_html(value: str, config: SanitizeConfig) -> str | None:
    m = _HTML_TAG.search(value)
    if m:
        return f"contains a <{m.group(1).lower()}> tag"
    m = _HTML_HANDLER.search(value)
    if m:
        return f"contains an inline event handler ({m.group(1).lower()}=)"
    squeezed = _INVISIBLE.sub("", html.unescape(html.unescape(value)))
    m = _HTML_BAD_URL.search(squeezed)
    if m:
        return f"contains a {m.group(0).split(':')[0].lower()}: URL"
    if _HTML_EXPR.search(squeezed):
        return "contains a CSS expression"
    return None


# ---------------------------------------------------------------------------------- email

_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def detect_email(value: str, config: SanitizeConfig) -> str | None:
    if "\r" in value or "\n" in value or "%0a" in value.lower() or "%0d" in value.lower():
        return "contains a line break (header injection)"
    v = value.strip()
    if v.count("@") != 1 or re.search(r"[,;\s<>]", v):
        return "must be exactly one email address"
    if len(v) > 254 or not _EMAIL.match(v) or len(v.split("@")[0]) > 64:
        return "is not a valid email address"
    domain = v.rsplit("@", 1)[1].lower()
    if config.email_domains is not None and not _host_matches(domain, config.email_domains):
        return f"domain {domain!r} is not an allowed recipient domain"
    return None


DEFAULT_DETECTORS: Mapping[str, Detector] = {
    "sql": detect_sql,
    "shell": detect_shell,
    "path": detect_path,
    "url": detect_url,
    "html": detect_html,
    "email": detect_email,
}


# ----------------------------------------------------------------------------- middleware


@dataclass(frozen=True, slots=True)
class Finding:
    param: str
    kind: str
    problem: str

    def message(self) -> str:
        return f"argument '{self.param}' was refused by the {self.kind} check: it {self.problem}"


@dataclass(slots=True)
class Sanitizer:
    """Middleware checking `tool.annotations.sinks` arguments (see module docs).

    Unknown sink kinds fail closed (the call is refused) so a typo never disables a check.
    """

    config: SanitizeConfig = field(default_factory=SanitizeConfig)
    detectors: dict[str, Detector] = field(default_factory=lambda: dict(DEFAULT_DETECTORS))

    def register(self, kind: str, detector: Detector) -> None:
        """Add a detector for a new sink kind, or replace a built-in one."""
        self.detectors[kind] = detector

    def check(self, sinks: Mapping[str, str], args: Mapping[str, Any]) -> list[Finding]:
        findings: list[Finding] = []
        for param, kind in sinks.items():
            if param not in args:
                continue
            detector = self.detectors.get(kind)
            if detector is None:
                findings.append(Finding(param, kind, "has no detector configured (refused)"))
                continue
            for value in _strings(args[param]):
                normalised = unicodedata.normalize("NFKC", value)
                problem = detector(normalised, self.config)
                if problem:
                    findings.append(Finding(param, kind, problem))
                    break
        return findings

    async def __call__(self, inv: Invocation, next: Next) -> ToolResult:
        sinks = inv.tool.annotations.sinks
        if sinks:
            findings = self.check(sinks, inv.args)
            if findings:
                inv.state["sanitize"] = [
                    {"param": f.param, "kind": f.kind, "problem": f.problem} for f in findings
                ]
                raise ToolDenied(
                    "; ".join(f.message() for f in findings)
                    + ". Use a plain value without these characters or sequences.",
                    rule=f"sanitize:{findings[0].kind}",
                    code="unsafe_argument",
                    detail=inv.state["sanitize"],
                )
        return await next(inv)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)):
        out: list[str] = []
        for v in value:
            out += _strings(v)
        return out
    if isinstance(value, Mapping):
        out = []
        for v in value.values():
            out += _strings(v)
        return out
    return []
