"""Tool lint: how well a model will understand a set of tools, before any model sees them.

A model chooses and fills a tool from its name, description and schema alone. Vague names, empty
descriptions, unbounded `limit` parameters, free-text `status` fields and near-duplicate tools are
the usual causes of wrong calls, and all of them are visible statically. `lint_tools` scores each
tool 0-100 and lists findings, each with a stable code, a severity and a hint saying what to
change. `callgate lint module:attr` runs it from the command line and fails (exit 1) when a tool
scores below `--min-score` or has an error, so it fits in CI.

The checks are heuristics about *naming*: they can be wrong for a given tool, which is why most
are warnings and the score is advisory.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import json
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from callgate.dialects.export import check_shape, strict_compatible
from callgate.errors import SchemaError
from callgate.jsonschema import Refs
from callgate.tools.definition import Tool, ToolSpec

__all__ = ["Finding", "LintReport", "Severity", "ToolLint", "add_cli", "lint_tools"]

Severity = Literal["error", "warning", "info"]


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _stem(word: str) -> str:
    """Crude plural folding, enough to match 'orders' with 'order'."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


#: code -> (severity, score penalty). Codes are stable; messages may change.
RULES: dict[str, tuple[Severity, int]] = {
    "CG100": ("error", 50),  # malformed parameters schema
    "CG101": ("error", 30),  # no description
    "CG102": ("warning", 10),  # description too short
    "CG103": ("warning", 10),  # vague description
    "CG104": ("warning", 8),  # description only repeats the name
    "CG110": ("warning", 10),  # vague name
    "CG111": ("info", 3),  # name has no verb
    "CG120": ("warning", 5),  # parameter without description
    "CG121": ("warning", 8),  # boolean without description
    "CG122": ("warning", 5),  # count-like number without bounds
    "CG123": ("warning", 5),  # category-like string without enum
    "CG124": ("warning", 4),  # id/email/url/date string without format or pattern
    "CG125": ("info", 2),  # parameter name says nothing
    "CG130": ("warning", 10),  # too many parameters
    "CG131": ("warning", 6),  # deep nesting
    "CG140": ("warning", 8),  # overlaps another tool
    "CG150": ("warning", 10),  # destructive, description does not say so
    "CG151": ("warning", 10),  # sounds destructive, not declared
    "CG152": ("info", 3),  # side effects unknown
    "CG153": ("error", 30),  # declared both read-only and destructive
    "CG160": ("info", 2),  # not usable in OpenAI strict mode
}

MAX_PARAMETERS = 12
MAX_NESTING = 3
MIN_DESCRIPTION_CHARS = 20
MIN_DESCRIPTION_WORDS = 4
OVERLAP_THRESHOLD = 0.6

_VAGUE_NAMES = _wordset(
    """
    do process handle handler run execute exec call invoke perform tool func function helper
    util utils misc stuff thing things main action task data manage api test foo bar
    """
)
_VERBS = _wordset(
    """
    get list search find lookup look query fetch read load show view describe count check verify
    validate test compute calculate estimate convert translate summarize summarise classify
    extract analyze analyse compare parse format render resolve geocode predict create add
    insert make new build generate register open start launch schedule book reserve plan draft
    compose write save store put post upload import export download update edit modify change
    set patch rename move copy merge sync assign reassign tag label attach link enable disable
    toggle mark approve reject submit send reply forward notify invite share publish unpublish
    archive restore pay charge refund transfer deposit withdraw order buy sell cancel close stop
    end finish complete pause resume retry delete remove drop destroy purge wipe erase clear
    reset revoke grant terminate kill ban block unblock subscribe unsubscribe login logout
    authenticate authorize sign encrypt decrypt hash sort filter group rank recommend suggest
    transcribe detect identify scan crawl scrape browse navigate click type fill select upsert
    apply confirm log record track monitor ping wait sleep lock unlock
    """
)
_DESTRUCTIVE_VERBS = _wordset(
    """
    delete remove drop destroy purge wipe erase truncate terminate kill revoke ban overwrite
    reset cancel refund charge pay transfer
    """
)
_DESTRUCTIVE_WORDS = (
    "delete",
    "remove",
    "permanent",
    "irreversible",
    "cannot be undone",
    "can't be undone",
    "destroy",
    "overwrite",
    "erase",
    "purge",
    "wipe",
    "drop",
    "cancel",
    "revoke",
    "terminate",
    "charge",
    "refund",
    "transfer",
    "pay",
    "destructive",
    "confirm",
)
_VAGUE_PHRASES = (
    "does stuff",
    "does things",
    "do stuff",
    "do things",
    "handles stuff",
    "handles things",
    "handles it",
    "processes data",
    "process data",
    "helper function",
    "utility function",
    "a tool",
    "this tool",
    "todo",
    "tbd",
    "fixme",
    "misc",
    "various",
    "some stuff",
    "something",
)
_VAGUE_PARAM_NAMES = _wordset(
    """
    data input value val arg args param params obj object payload info stuff thing x y z foo bar
    tmp temp
    """
)
_BOUND_WORDS = _wordset(
    """
    limit count page size age percent percentage offset max min num number quantity qty top k n
    retries attempts days hours minutes seconds timeout duration ratio rate score rating level
    year month day hour minute width height length depth radius amount guests nights
    """
)
_ENUM_WORDS = _wordset(
    """
    status state type kind mode sort order direction unit units currency format category
    priority severity language lang locale gender visibility role tier channel method
    granularity interval period frequency scope environment env
    """
)
_BOUND_STEMS = frozenset(_stem(w) for w in _BOUND_WORDS)
_ENUM_STEMS = frozenset(_stem(w) for w in _ENUM_WORDS)
_FORMAT_SUFFIXES = ("email", "url", "uri", "date", "datetime", "timestamp", "time", "phone")
_STOPWORDS = _wordset(
    """
    a an the and or of to for in on at by with from into this that these those it its is are be
    as if then than so such via per given using use used will can may should must not no yes all
    any each every some which who whom whose what when where why how tool function returns
    return value values
    """
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing to improve in one tool (and one parameter, when `parameter` is set)."""

    code: str
    severity: Severity
    tool: str
    parameter: str | None
    message: str
    hint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "tool": self.tool,
            "parameter": self.parameter,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(slots=True)
class ToolLint:
    tool: str
    score: int
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "score": self.score,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(slots=True)
class LintReport:
    """Per-tool scores and findings, in the order the tools were given."""

    tools: list[ToolLint]

    @property
    def findings(self) -> list[Finding]:
        return [f for t in self.tools for f in t.findings]

    @property
    def lowest_score(self) -> int:
        return min((t.score for t in self.tools), default=100)

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def score_of(self, tool: str) -> int:
        for t in self.tools:
            if t.tool == tool:
                return t.score
        raise KeyError(tool)

    def codes(self, tool: str | None = None) -> set[str]:
        return {f.code for f in self.findings if tool is None or f.tool == tool}

    def passed(self, min_score: int = 0) -> bool:
        """No error findings and every tool scores at least `min_score`."""
        return not self.has_errors and all(t.score >= min_score for t in self.tools)

    def to_dict(self) -> dict[str, Any]:
        counts = {s: 0 for s in ("error", "warning", "info")}
        for f in self.findings:
            counts[f.severity] += 1
        return {
            "tools": [t.to_dict() for t in self.tools],
            "summary": {
                "tools": len(self.tools),
                "lowest_score": self.lowest_score,
                **{f"{k}s" if k != "info" else k: v for k, v in counts.items()},
            },
        }

    def render(self) -> str:
        """A readable report, worst tools first."""
        lines: list[str] = []
        for t in sorted(self.tools, key=lambda t: (t.score, t.tool)):
            lines.append(f"{t.tool}  score {t.score}/100")
            if not t.findings:
                lines.append("  no findings")
            for f in t.findings:
                where = f" [{f.parameter}]" if f.parameter else ""
                lines.append(f"  {f.severity:<7} {f.code}{where} {f.message}")
                lines.append(f"          hint: {f.hint}")
            lines.append("")
        s = self.to_dict()["summary"]
        lines.append(
            f"{_count(s['tools'], 'tool')}, {_count(len(self.findings), 'finding')} "
            f"({_count(s['errors'], 'error')}, {_count(s['warnings'], 'warning')}, "
            f"{s['info']} info); lowest score {s['lowest_score']}"
        )
        return "\n".join(lines)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- checks --------------------------------------------------------------------------------


def lint_tools(tools: Iterable[Tool | ToolSpec]) -> LintReport:
    """Score each tool 0-100 and list what to improve. See `RULES` for codes and weights."""
    specs = [t.spec if isinstance(t, Tool) else t for t in tools]
    per_tool: dict[int, list[Finding]] = {i: [] for i in range(len(specs))}
    for i, spec in enumerate(specs):
        per_tool[i].extend(_ToolChecker(spec).run())
    for (i, j), message in _overlaps(specs):
        for a, b in ((i, j), (j, i)):
            per_tool[a].append(
                _finding(
                    "CG140",
                    specs[a].name,
                    None,
                    f"overlaps with {specs[b].name!r} ({message})",
                    "merge the two tools, or make names and descriptions say when to use which",
                )
            )
    out: list[ToolLint] = []
    for i, spec in enumerate(specs):
        findings = per_tool[i]
        penalty = sum(RULES[f.code][1] for f in findings)
        out.append(ToolLint(spec.name, max(0, 100 - penalty), findings))
    return LintReport(out)


def _finding(code: str, tool: str, param: str | None, message: str, hint: str) -> Finding:
    return Finding(code, RULES[code][0], tool, param, message, hint)


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [t.lower() for t in re.split(r"[^A-Za-z0-9]+", spaced) if t]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class _ToolChecker:
    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec
        self.schema = spec.parameters
        self.findings: list[Finding] = []

    def add(self, code: str, message: str, hint: str, param: str | None = None) -> None:
        self.findings.append(_finding(code, self.spec.name, param, message, hint))

    def run(self) -> list[Finding]:
        self.check_name()
        self.check_description()
        self.check_side_effects()
        try:
            check_shape(self.schema)
        except SchemaError as e:
            self.add(
                "CG100",
                f"the parameters schema is malformed: {e}",
                "fix the JSON Schema; providers reject the whole request over one bad tool",
            )
            return self.findings
        self.check_parameters()
        try:
            reason = strict_compatible(self.schema)
        except Exception as e:  # noqa: BLE001 - a lint must report, not crash, on odd schemas
            reason = f"the schema could not be analysed ({type(e).__name__}: {e})"
        if reason is not None:
            self.add(
                "CG160",
                f"not usable in OpenAI strict mode: {reason}",
                "strict mode guarantees well-formed arguments; use closed models instead of "
                "dicts/Any if you want it",
            )
        return self.findings

    # name and description ------------------------------------------------------------------

    def check_name(self) -> None:
        toks = _tokens(self.spec.name)
        bare = [re.sub(r"\d+$", "", t) for t in toks]
        if not toks or all(t in _VAGUE_NAMES or t == "" for t in bare):
            self.add(
                "CG110",
                f"the name {self.spec.name!r} does not say what the tool does",
                "name it verb_object, e.g. search_orders or cancel_booking",
            )
            return
        if not any(t in _VERBS for t in toks):
            self.add(
                "CG111",
                f"the name {self.spec.name!r} has no verb",
                "start with what it does: get_, search_, create_, update_, delete_, send_ ...",
            )

    def check_description(self) -> None:
        desc = self.spec.description.strip()
        if not desc:
            self.add(
                "CG101",
                "no description",
                "say what the tool does, when to use it, and what it returns (a docstring)",
            )
            return
        low = desc.lower()
        words = _words(desc)
        for phrase in _VAGUE_PHRASES:
            if re.search(rf"\b{re.escape(phrase)}\b", low):
                self.add(
                    "CG103",
                    f"the description is vague ({phrase!r})",
                    "describe the concrete effect and result, e.g. 'Returns the 10 most recent "
                    "orders of a customer, newest first'",
                )
                break
        content = {_stem(w) for w in words if w not in _STOPWORDS}
        name_toks = {_stem(t) for t in _tokens(self.spec.name)}
        if content and content <= name_toks:
            self.add(
                "CG104",
                "the description only repeats the name",
                "add what the name cannot say: inputs, effects, limits, what it returns",
            )
        elif len(desc) < MIN_DESCRIPTION_CHARS or len(words) < MIN_DESCRIPTION_WORDS:
            self.add(
                "CG102",
                f"the description is short ({len(words)} words)",
                "one or two sentences: what it does, when to use it, what it returns",
            )

    def check_side_effects(self) -> None:
        ann = self.spec.annotations
        toks = {_stem(t) for t in _tokens(self.spec.name)}
        if ann.read_only and ann.destructive:
            self.add(
                "CG153",
                "declared both read_only and destructive",
                "a tool either changes nothing (read_only) or has effects; pick one",
            )
            return
        if ann.destructive:
            low = self.spec.description.lower()
            if not any(w in low for w in _DESTRUCTIVE_WORDS):
                self.add(
                    "CG150",
                    "destructive, but the description does not say what it destroys or changes",
                    "state the effect plainly, e.g. 'Permanently deletes the file; cannot be "
                    "undone'",
                )
        elif toks & _DESTRUCTIVE_VERBS and not ann.read_only:
            self.add(
                "CG151",
                "the name sounds destructive but the tool is not declared destructive",
                "declare it with @tool(destructive=True) so the gate asks for approval",
            )
        elif not ann.read_only:
            self.add(
                "CG152",
                "side effects unknown: neither read_only nor destructive is declared",
                "declare @tool(read_only=True) for lookups: the gate retries those safely and "
                "CacheMiddleware (callgate.gate.middleware.cache) may cache them",
            )

    # parameters ----------------------------------------------------------------------------

    def check_parameters(self) -> None:
        props = self.schema.get("properties") or {}
        if len(props) > MAX_PARAMETERS:
            self.add(
                "CG130",
                f"{len(props)} parameters (more than {MAX_PARAMETERS})",
                "split the tool, or group related parameters into a model",
            )
        for name, sub in props.items():
            self.check_param(name, name, sub, top=True)
        depth = self._depth(self.schema, frozenset(), 0)
        if depth > MAX_NESTING:
            self.add(
                "CG131",
                f"parameters nest {depth} objects deep",
                f"flatten to at most {MAX_NESTING} levels; models fill deep structures poorly",
            )

    def _resolve(self, node: Any, seen: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The effective schema of a property: `$ref` followed, the null branch of an optional
        dropped, a field's own description kept."""
        if not isinstance(node, dict):
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            try:
                merged = Refs(self.schema).deref(node)
            except SchemaError:
                merged = {k: v for k, v in node.items() if k != "$ref"}
            return self._resolve(merged, seen | {ref})
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list):
                real = [
                    b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")
                ]
                if len(real) == 1:
                    inner = self._resolve(real[0], seen)
                    outer = {k: v for k, v in node.items() if k != key}
                    return {**inner, **outer}
        return node

    def check_param(self, path: str, name: str, raw: Any, *, top: bool) -> None:
        node = self._resolve(raw)
        typ = node.get("type")
        described = bool(str(node.get("description", "")).strip())
        toks = _tokens(name)
        stems = {_stem(t) for t in toks}
        if not described and typ == "boolean":
            self.add(
                "CG121",
                "boolean without a description",
                "say what true and false each do; models guess booleans badly",
                path,
            )
        elif not described and top:
            self.add(
                "CG120",
                "parameter has no description",
                "document it in the docstring's Args section or with Field(description=...)",
                path,
            )
        if name.lower() in _VAGUE_PARAM_NAMES:
            self.add(
                "CG125",
                f"the parameter name {name!r} says nothing about its content",
                "name it after what it holds (customer_id, query, start_date)",
                path,
            )
        if typ in ("integer", "number") and stems & _BOUND_STEMS:
            bounded = any(
                k in node for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
            )
            if not bounded and "enum" not in node:
                self.add(
                    "CG122",
                    f"{typ} without bounds",
                    "give a range, e.g. Annotated[int, Field(ge=1, le=100)]",
                    path,
                )
        if typ == "string" and "enum" not in node and "const" not in node:
            if toks and _stem(toks[-1]) in _ENUM_STEMS:
                if "pattern" not in node and "format" not in node:
                    self.add(
                        "CG123",
                        "free-text string where a fixed set of values is likely",
                        "use a Literal[...] or an Enum so the model sees the allowed values",
                        path,
                    )
            elif _wants_format(toks) and "format" not in node and "pattern" not in node:
                self.add(
                    "CG124",
                    "identifier/address/date string without a format or pattern",
                    "add format (date, date-time, email, uri, uuid) or a pattern, and an example",
                    path,
                )
        self._check_children(path, node)

    def _check_children(self, path: str, node: dict[str, Any]) -> None:
        """The properties of a nested object, and of the objects in an array."""
        props = node.get("properties")
        if isinstance(props, dict):
            for sub_name, sub in props.items():
                self.check_param(f"{path}.{sub_name}", sub_name, sub, top=False)
        items = node.get("items")
        if isinstance(items, dict):
            inner = self._resolve(items)
            inner_props = inner.get("properties")
            if isinstance(inner_props, dict):
                for sub_name, sub in inner_props.items():
                    self.check_param(f"{path}[].{sub_name}", sub_name, sub, top=False)

    def _depth(self, node: Any, seen: frozenset[str], level: int) -> int:
        """Object nesting depth of the parameters (a recursive model counts once)."""
        if not isinstance(node, dict) or level > 32:
            return level
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return level
            return self._depth(self._resolve({"$ref": ref}), seen | {ref}, level)
        best = level
        if isinstance(node.get("properties"), dict):
            best = level + 1
            for sub in node["properties"].values():
                best = max(best, self._depth(sub, seen, level + 1))
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                best = max(best, self._depth(node[key], seen, level))
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []) or []:
                best = max(best, self._depth(sub, seen, level))
        return best


def _wants_format(toks: list[str]) -> bool:
    return bool(toks) and (toks[-1] in _FORMAT_SUFFIXES or toks[-1] in ("id", "uuid", "guid"))


def _overlaps(specs: list[ToolSpec]) -> Iterator[tuple[tuple[int, int], str]]:
    names = [{_stem(t) for t in _tokens(s.name)} for s in specs]
    descs = [{_stem(w) for w in _words(s.description) if w not in _STOPWORDS} for s in specs]
    for i in range(len(specs)):
        for j in range(i + 1, len(specs)):
            a, b = specs[i].name.lower(), specs[j].name.lower()
            name_sim = _jaccard(names[i], names[j])
            ratio = difflib.SequenceMatcher(None, a, b).ratio()
            if name_sim >= 1.0 or (name_sim >= OVERLAP_THRESHOLD and ratio >= 0.8):
                yield (i, j), f"similar names, {name_sim:.0%} shared words"
                continue
            if min(len(descs[i]), len(descs[j])) >= 4:
                desc_sim = _jaccard(descs[i], descs[j])
                if desc_sim >= OVERLAP_THRESHOLD:
                    yield (i, j), f"similar descriptions, {desc_sim:.0%} shared words"


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# --- command line --------------------------------------------------------------------------


class TargetError(Exception):
    """The lint target could not be loaded or holds no tools."""


def load_tools(target: str) -> list[Tool]:
    """Load tools from `module:attr`, `path/to/file.py:attr`, or a module/file alone (every
    module-level `Tool`). `attr` may be dotted; it may name a Tool, an iterable of Tools (list,
    Toolset) or an object with a `.tools` iterable."""
    source, _, attr = target.rpartition(":")
    if not source or (len(source) == 1 and source.isalpha()):  # no ":" (or a Windows drive)
        source, attr = target, ""
    module = _import_source(source)
    if not attr:
        found = [v for v in vars(module).values() if isinstance(v, Tool)]
        if not found:
            raise TargetError(f"{source}: no Tool objects at module level; name one with :attr")
        return found
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"{source} has no attribute {attr!r}") from None
    return _as_tools(obj, target)


def _import_source(source: str) -> ModuleType:
    if source.endswith(".py") or "/" in source or "\\" in source:
        path = Path(source)
        if not path.is_file():
            raise TargetError(f"no such file: {source}")
        name = f"_callgate_lint_{path.stem}_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise TargetError(f"cannot load {source} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(name, None)
            raise TargetError(f"importing {source} failed: {type(e).__name__}: {e}") from e
        finally:
            sys.path.remove(str(path.resolve().parent))
        return module
    try:
        return importlib.import_module(source)
    except Exception as e:
        raise TargetError(f"importing {source} failed: {type(e).__name__}: {e}") from e


def _as_tools(obj: Any, target: str) -> list[Tool]:
    if isinstance(obj, Tool):
        return [obj]
    candidates = getattr(obj, "tools", obj)
    if isinstance(candidates, str | bytes | dict) or not hasattr(candidates, "__iter__"):
        raise TargetError(
            f"{target} is a {type(obj).__name__}, not a Tool, an iterable of Tools "
            "or an object with .tools"
        )
    tools: list[Tool] = []
    for i, item in enumerate(candidates):
        if not isinstance(item, Tool):
            raise TargetError(f"{target}: item {i} is a {type(item).__name__}, not a Tool")
        tools.append(item)
    if not tools:
        raise TargetError(f"{target} holds no tools")
    return tools


def add_cli(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "lint",
        help="score tools for how well a model will understand them",
        description="Lint tool names, descriptions and schemas. Exit 1 when a tool has an "
        "error or scores below --min-score; exit 2 when the target cannot be loaded.",
    )
    p.add_argument("target", help="module:attr or path/to/file.py:attr (a Tool, list, Toolset)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--min-score", type=int, default=0, metavar="N", help="fail when a tool scores below N"
    )
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    try:
        tools = load_tools(args.target)
    except TargetError as e:
        print(f"callgate lint: {e}", file=sys.stderr)
        return 2
    report = lint_tools(tools)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
    return 0 if report.passed(args.min_score) else 1
