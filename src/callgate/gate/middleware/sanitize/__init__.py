"""Injection checks on arguments that flow into dangerous sinks, before the tool runs.

A tool declares its sinks (`@tool(sinks={"query": "sql", "path": "path"})`); the `Sanitizer`
middleware checks those arguments (strings, or each string of a list or mapping) with one
detector per kind and refuses the call with `ToolDenied` naming the parameter and the problem.
Detectors are plain functions `(value, config) -> problem | None`; `register` adds or replaces
one. Each built-in kind lives in its own module and parses the value before judging it:

- `sql`: a small SQL lexer; the value is judged bare and after each quote it contains;
- `shell`: one argv element: option injection, shell expansions, separators, control chars;
- `path`: every percent-decoding stage and NFKC form, resolved against the configured roots;
- `url`: `urllib.parse` + `ipaddress`: every IPv4 spelling, IPv4 carried in IPv6, IDNA hosts,
  wildcard-DNS names with an embedded address, optional DNS resolution;
- `html`: the allow-list sanitiser nh3 plus fixed-point entity decoding and CSS checks;
- `email`: email-validator (no DNS) plus every Unicode line separator.

Each check reads at most `SanitizeConfig.max_chars[kind]` characters (a longer value is refused)
and runs in linear time, well under 10 ms on any value up to that limit.

A parameter the model omitted keeps the default the tool's author wrote; an author's default is
never judged (it is not model input), whether omitted or sent back unchanged.

Limits: these are guards in front of code that should still use parameterised queries, argument
lists instead of shell strings and proper escaping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from callgate.errors import ToolDenied
from callgate.gate.middleware.sanitize.config import (
    DEFAULT_BLOCKED_DOMAINS,
    DEFAULT_BLOCKED_NETWORKS,
    DEFAULT_MAX_CHARS,
    Detector,
    SanitizeConfig,
    SanitizerUnavailable,
)
from callgate.gate.middleware.sanitize.email import detect_email
from callgate.gate.middleware.sanitize.html import detect_html
from callgate.gate.middleware.sanitize.path import detect_path
from callgate.gate.middleware.sanitize.shell import detect_shell
from callgate.gate.middleware.sanitize.sql import detect_sql
from callgate.gate.middleware.sanitize.url import detect_url
from callgate.gate.protocols import Invocation, Next, SinkFinding
from callgate.messages import ToolResult
from callgate.tools.definition import Tool

__all__ = [
    "DEFAULT_BLOCKED_DOMAINS",
    "DEFAULT_BLOCKED_NETWORKS",
    "DEFAULT_DETECTORS",
    "DEFAULT_MAX_CHARS",
    "Detector",
    "Finding",
    "SanitizeConfig",
    "Sanitizer",
    "SanitizerUnavailable",
    "detect_email",
    "detect_html",
    "detect_path",
    "detect_shell",
    "detect_sql",
    "detect_url",
]

DEFAULT_DETECTORS: Mapping[str, Detector] = {
    "sql": detect_sql,
    "shell": detect_shell,
    "path": detect_path,
    "url": detect_url,
    "html": detect_html,
    "email": detect_email,
}

#: One refused argument (the gate records it on the invocation).
Finding = SinkFinding


def _message(f: SinkFinding) -> str:
    return f"argument '{f.param}' was refused by the {f.kind} check: it {f.problem}"


_NO_DEFAULT = object()


def _author_default(tool: Tool, param: str) -> Any:
    """The default the tool's author declared for `param` (JSON schema), or `_NO_DEFAULT`."""
    props = tool.spec.parameters.get("properties")
    if not isinstance(props, Mapping):
        return _NO_DEFAULT
    prop = props.get(param)
    if isinstance(prop, Mapping) and "default" in prop:
        return prop["default"]
    return _NO_DEFAULT


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

    def check(
        self, sinks: Mapping[str, str], args: Mapping[str, Any], tool: Tool | None = None
    ) -> list[SinkFinding]:
        """The refused arguments of a call (empty when every sink argument passes). With
        `tool`, an argument equal to the author's declared default is not judged."""
        findings: list[SinkFinding] = []
        for param, kind in sinks.items():
            if param not in args:
                continue
            if tool is not None and args[param] == _author_default(tool, param):
                continue
            detector = self.detectors.get(kind)
            if detector is None:
                findings.append(SinkFinding(param, kind, "has no detector configured (refused)"))
                continue
            for value in _strings(args[param]):
                problem = detector(value, self.config)
                if problem:
                    findings.append(SinkFinding(param, kind, problem))
                    break
        return findings

    async def __call__(self, inv: Invocation, next: Next) -> ToolResult:
        sinks = inv.tool.annotations.sinks
        if sinks:
            findings = self.check(sinks, inv.args, inv.tool)
            if findings:
                inv.sanitized = tuple(findings)
                raise ToolDenied(
                    "; ".join(_message(f) for f in findings)
                    + ". Use a plain value without these characters or sequences.",
                    rule=f"sanitize:{findings[0].kind}",
                    code="unsafe_argument",
                    detail=[
                        {"param": f.param, "kind": f.kind, "problem": f.problem} for f in findings
                    ],
                )
        return await next(inv)


def _strings(value: Any) -> list[str]:
    """Every string inside `value` (lists, tuples, sets and mapping values are crossed)."""
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
    return out
