"""The Berkeley Function Calling Leaderboard's single-turn categories through any callgate model.

Data and scoring are BFCL's own, from the ``bfcl-eval`` wheel (``pip install --no-deps
bfcl-eval``: the checker needs only the standard library; its declared dependencies are provider
SDKs the checker never uses). Each case's function docs become `ToolSpec`s, the model is asked
once with ``tool_choice="auto"``, and its calls are scored by BFCL's ``ast_checker``; in the
irrelevance categories a case passes when the model makes no call (BFCL's rule). Ground truth
is read only after the model answered.

Besides accuracy the report gives, per category, the share of replies with calls whose
arguments parsed as JSON objects and the share that also validated against the declared
schema (a model can be right in spirit and still send arguments no tool would accept), the
seconds per case and the tokens used.

BFCL's ``model_config`` module imports every provider SDK BFCL supports; the checker reads it
for one thing (whether a model's function names had dots replaced). A stand-in for that module
is installed before the checker is imported; the checking logic itself is unchanged.
"""

from __future__ import annotations

import json
import random
import sys
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from callgate.errors import CallgateError
from callgate.eval.checks import call_arguments
from callgate.messages import Message, ToolCall
from callgate.models import Model, ModelRequest
from callgate.tools.definition import ToolSpec

#: the command-line category names and BFCL's data file stems
BFCL_FILES = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
    "live_simple": "live_simple",
    "live_multiple": "live_multiple",
    "live_parallel": "live_parallel",
    "live_irrelevance": "live_irrelevance",
}
BFCL_CATEGORIES = tuple(BFCL_FILES)
NO_CALL_CATEGORIES = frozenset({"irrelevance", "live_irrelevance"})
_CHECKER_NAME = "callgate"

_TYPE_NAMES = {
    "dict": "object",
    "float": "number",
    "double": "number",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "str": "string",
    "char": "string",
    "bool": "boolean",
    "list": "array",
    "tuple": "array",
    "ArrayList": "array",
    "Array": "array",
}
_KEPT_KEYS = ("description", "enum", "required", "default", "format", "maximum", "minimum")

Checker = Callable[..., dict[str, Any]]


def load_checker() -> tuple[Checker, Any]:
    """BFCL's ``ast_checker`` and its Python language marker; raises `CallgateError` with the
    install command when the wheel is missing."""
    try:
        import bfcl_eval  # noqa: F401
    except ImportError as exc:
        raise CallgateError(
            "callgate eval bfcl needs BFCL's data and checker: pip install --no-deps bfcl-eval"
        ) from exc

    @dataclass
    class _Config:
        underscore_to_dot: bool = False

    class _Configs(dict[str, Any]):
        def __missing__(self, key: str) -> _Config:
            return _Config()

    if "bfcl_eval.constants.model_config" not in sys.modules:
        stand_in = types.ModuleType("bfcl_eval.constants.model_config")
        stand_in.MODEL_CONFIG_MAPPING = _Configs()  # type: ignore[attr-defined]
        sys.modules["bfcl_eval.constants.model_config"] = stand_in
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    return ast_checker, Language.PYTHON


def bfcl_schema(node: Any) -> Any:
    """BFCL's parameter notation (``dict``, ``float``, ``tuple``, ``any``) as JSON Schema."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            if value != "any":
                out["type"] = _TYPE_NAMES.get(value, value)
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {k: bfcl_schema(v) for k, v in value.items()}
        elif key == "items":
            out["items"] = bfcl_schema(value)
        elif key in _KEPT_KEYS:
            out[key] = value
    if "required" in out:
        props = out.get("properties")
        out["required"] = [r for r in out["required"] if isinstance(props, dict) and r in props]
    if out.get("type") == "number" and isinstance(out.get("default"), str):
        del out["default"]
    return out


def load_cases(
    category: str, limit: int, offset: int = 0, sample: int = 0, seed: int = 0, pool_from: int = 0
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A category's cases (a seeded random `sample` of the cases from index `pool_from` on,
    or ``[offset, offset+limit)``) and the ground truth by case id. `pool_from` keeps cases
    that were looked at while tuning a model out of the score."""
    root = resources.files("bfcl_eval") / "data"
    stem = BFCL_FILES[category]
    rows = [json.loads(x) for x in (root / f"BFCL_v4_{stem}.json").read_text().splitlines() if x]
    if sample:
        pool = rows[pool_from:]
        rng = random.Random(f"{seed}/{category}")
        picked = sorted(rng.sample(range(len(pool)), min(sample, len(pool))))
        cases = [pool[i] for i in picked]
    else:
        cases = rows[offset : offset + limit]
    truth: dict[str, Any] = {}
    answers = root / "possible_answer" / f"BFCL_v4_{stem}.json"
    if answers.is_file():
        for line in answers.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                truth[row["id"]] = row["ground_truth"]
    return cases, truth


def case_request(case: dict[str, Any]) -> ModelRequest:
    """The model request of a BFCL case: its first turn and its functions as tools."""
    turn = case["question"][0]
    system = "\n".join(m["content"] for m in turn if m["role"] == "system") or None
    messages = [Message(m["role"], m["content"]) for m in turn if m["role"] != "system"]
    tools = [
        ToolSpec(f["name"], f.get("description", ""), bfcl_schema(f["parameters"]))
        for f in case["function"]
    ]
    return ModelRequest(messages, tools=tools, system=system, tool_choice="auto")


@dataclass(slots=True)
class BfclCase:
    id: str
    passed: bool
    calls: list[dict[str, Any]]
    parsed: bool | None
    validated: bool | None
    seconds: float
    tokens: int
    error: str | None = None


@dataclass(slots=True)
class BfclCategory:
    name: str
    cases: list[BfclCase] = field(default_factory=list)

    def stats(self) -> dict[str, float]:
        n = max(len(self.cases), 1)
        with_calls = [c for c in self.cases if c.parsed is not None]
        m = max(len(with_calls), 1)
        return {
            "cases": len(self.cases),
            "accuracy": sum(c.passed for c in self.cases) / n,
            "parsed": sum(bool(c.parsed) for c in with_calls) / m,
            "validated": sum(bool(c.validated) for c in with_calls) / m,
            "s_per_case": sum(c.seconds for c in self.cases) / n,
            "tokens_per_case": sum(c.tokens for c in self.cases) / n,
        }


@dataclass(slots=True)
class BfclReport:
    model: str
    selection: dict[str, Any]
    categories: list[BfclCategory] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"{'category':<18} {'acc':>6} {'parsed':>7} {'valid':>6} {'s/case':>7} {'tokens':>7}"
        ]
        for cat in self.categories:
            s = cat.stats()
            lines.append(
                f"{cat.name:<18} {s['accuracy']:6.1%} {s['parsed']:7.1%} {s['validated']:6.1%} "
                f"{s['s_per_case']:7.2f} {s['tokens_per_case']:7.0f}  (n={int(s['cases'])})"
            )
        lines.append(f"model: {self.model}  selection: {self.selection}")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> None:
        data = {
            "model": self.model,
            "selection": self.selection,
            "categories": {
                c.name: c.stats() | {"rows": [asdict(r) for r in c.cases]} for c in self.categories
            },
        }
        Path(path).write_text(json.dumps(data, indent=1, default=str) + "\n")


class BfclRunner:
    """Scores one model on BFCL categories; `checker` defaults to BFCL's own."""

    def __init__(self, model: Model, checker: tuple[Checker, Any] | None = None) -> None:
        self.model = model
        self._checker = checker

    async def run(
        self,
        categories: Sequence[str],
        limit: int = 20,
        offset: int = 0,
        sample: int = 0,
        seed: int = 0,
        progress: Callable[[int, int, str], None] | None = None,
        pool_from: int = 0,
    ) -> BfclReport:
        checker = self._checker or load_checker()
        selection: dict[str, Any] = {"limit": limit, "offset": offset}
        if sample:
            selection = {"sample": sample, "seed": seed, "pool_from": pool_from}
        report = BfclReport(self.model.name, selection)
        loaded = [(c, *load_cases(c, limit, offset, sample, seed, pool_from)) for c in categories]
        total, done = sum(len(cases) for _, cases, _ in loaded), 0
        for cat, cases, truth in loaded:
            result = BfclCategory(cat)
            for case in cases:
                result.cases.append(await self.score(cat, case, truth.get(case["id"]), checker))
                done += 1
                if progress is not None:
                    progress(done, total, case["id"])
            report.categories.append(result)
        return report

    async def score(
        self, category: str, case: dict[str, Any], truth: Any, checker: tuple[Checker, Any]
    ) -> BfclCase:
        """Ask the model once and score its reply; a model error fails the case."""
        request = case_request(case)
        t0 = time.perf_counter()
        try:
            response = await self.model.request(request)
        except Exception as exc:  # noqa: BLE001 - the case fails; the benchmark goes on
            secs = time.perf_counter() - t0
            return BfclCase(case["id"], False, [], None, None, secs, 0, repr(exc))
        secs = time.perf_counter() - t0
        raw = response.tool_calls
        decoded = [call_arguments(c) for c in raw]
        calls = [{c.name: a} for c, a in zip(raw, decoded, strict=True) if a is not None]
        parsed = validated = None
        if raw:
            parsed = all(a is not None for a in decoded)
            validated = parsed and _all_valid(request.tools, raw, decoded)
        if category in NO_CALL_CATEGORIES:
            ok, err = not raw, "made a call" if raw else None
        elif not parsed:
            ok, err = False, "no call" if parsed is None else "arguments did not parse"
        else:
            ast_checker, language = checker
            stem = BFCL_FILES[category]
            verdict = ast_checker(case["function"], calls, truth, language, stem, _CHECKER_NAME)
            ok = bool(verdict["valid"])
            err = None if ok else str(verdict.get("error"))
        tokens = response.usage.total_tokens
        return BfclCase(case["id"], ok, calls, parsed, validated, secs, tokens, err)


def _all_valid(
    tools: list[ToolSpec], calls: list[ToolCall], decoded: list[dict[str, Any] | None]
) -> bool:
    import jsonschema

    specs = {t.name: t for t in tools}
    for call, args in zip(calls, decoded, strict=True):
        spec = specs.get(call.name)
        if spec is None or args is None:
            return False
        if not jsonschema.Draft202012Validator(spec.parameters).is_valid(args):
            return False
    return True
