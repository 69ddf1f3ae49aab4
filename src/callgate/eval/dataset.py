"""The golden-dataset file format: cases a model must keep passing, read from YAML.

A golden file names the tools under test and lists cases. Each case is one user request (with
optional earlier history and the identity it runs as) and the assertions a good run satisfies:
which tools were called, with which arguments, which were not, how many calls and turns, what
the answer says and must not say, the fields of a typed output, and ceilings on cost and
latency. The format is validated on load with Pydantic, so a typo in a key is an error with
its path, not an assertion silently skipped.

Example (see ``evals/property_demo.yaml`` for a full set)::

    toolset: property_app:TOOLS
    deps: property_app_eval:fresh_database
    paths: [../examples]
    cases:
      - id: lisbon-under-400k
        query: Find apartments in Lisbon under 400000 euros
        expect:
          tools: {subset: [search_properties]}
          args:
            - {tool: search_properties, arg: city, pattern: "(?i)^lisbon$"}
            - {tool: search_properties, arg: max_price, range: {max: 400000}}
          not_called: [schedule_maintenance]
          answer_contains: [P-101]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from callgate.errors import CallgateError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueRange(_Strict):
    """Inclusive bounds for a numeric argument or field."""

    min: float | None = None
    max: float | None = None


class ValueCheck(_Strict):
    """One test of a value: exactly one of `equals`, `pattern` (a regular expression searched
    in the value's text), `range`, `any_of`, or `absent` (the value must not be given)."""

    equals: Any = None
    pattern: str | None = None
    range: ValueRange | None = None
    any_of: list[Any] | None = None
    absent: bool = False

    @model_validator(mode="after")
    def _one_test(self) -> ValueCheck:
        given = [
            "equals" in self.model_fields_set,
            self.pattern is not None,
            self.range is not None,
            self.any_of is not None,
            self.absent,
        ]
        if sum(given) != 1:
            raise ValueError("give exactly one of equals, pattern, range, any_of, absent")
        return self


class ArgCheck(ValueCheck):
    """Some call of `tool` has an argument at `arg` (a dotted path, e.g. ``filters.city``)
    that passes the check. `if_absent` is the value an omitted argument stands for (the
    tool's default), so leaving out ``status`` can pass a check for ``status: open``."""

    tool: str
    arg: str
    if_absent: Any = None


class FieldCheck(ValueCheck):
    """The typed final output has a field at `path` (dotted) that passes the check."""

    path: str


class ToolsExpect(_Strict):
    """Which tools the run called: `set` (exactly these, any order and count), `order`
    (exactly this sequence of calls), `subset` (at least these; others allowed)."""

    set: list[str] | None = None
    order: list[str] | None = None
    subset: list[str] | None = None


class Expect(_Strict):
    """What a passing run looks like. Every given assertion must hold."""

    tools: ToolsExpect | None = None
    args: list[ArgCheck] = Field(default_factory=list)
    not_called: list[str] = Field(default_factory=list)
    max_calls: int | None = Field(default=None, ge=0)
    max_turns: int | None = Field(default=None, ge=1)
    max_failed_calls: int | None = Field(default=None, ge=0)
    answer_contains: list[str] = Field(default_factory=list)
    answer_contains_any: list[list[str]] = Field(default_factory=list)
    answer_not_contains: list[str] = Field(default_factory=list)
    output: list[FieldCheck] = Field(default_factory=list)
    status: Literal["completed", "paused", "stopped"] | None = None
    max_cost_usd: float | None = Field(default=None, ge=0)
    max_latency_s: float | None = Field(default=None, gt=0)


class HistoryMessage(_Strict):
    role: Literal["user", "assistant"]
    content: str


class CaseContext(_Strict):
    """Who the case runs as (becomes the run's `RunContext`)."""

    user: str | None = None
    roles: list[str] = Field(default_factory=list)
    tenant: str | None = None


class StubMatch(_Strict):
    """A recorded result, returned when the call's arguments include all of `match`."""

    match: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: str | None = None


class RefCall(_Strict):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class RefTurn(_Strict):
    """One turn of a reference run: calls to make, or the final answer."""

    calls: list[RefCall] = Field(default_factory=list)
    answer: str | None = None

    @model_validator(mode="after")
    def _calls_or_answer(self) -> RefTurn:
        if bool(self.calls) == (self.answer is not None):
            raise ValueError("a reference turn has either calls or an answer")
        return self


class Case(_Strict):
    """One request and its assertions. `reference` is a run that passes, played by the
    ``reference`` model to check the case itself (the tools still run for real)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$")
    query: str
    kind: str | None = None
    history: list[HistoryMessage] = Field(default_factory=list)
    context: CaseContext = Field(default_factory=CaseContext)
    repetitions: int | None = Field(default=None, ge=1)
    stubs: dict[str, list[StubMatch]] = Field(default_factory=dict)
    expect: Expect = Field(default_factory=Expect)
    reference: list[RefTurn] = Field(default_factory=list)


class ModelPrice(_Strict):
    """The model's price in US dollars per million tokens, so `max_cost_usd` can be judged
    (providers report tokens, not cost)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class GoldenFile(_Strict):
    """A golden file: the tools under test and the cases."""

    name: str | None = None
    toolset: str | None = None
    deps: str | None = None
    #: a policy file (relative to the golden file); without one the default policy applies
    policy: str | None = None
    paths: list[str] = Field(default_factory=list)
    instructions: str | None = None
    price: ModelPrice | None = None
    repetitions: int = Field(default=1, ge=1)
    #: calls the policy sends for approval are approved (false: queued, the run pauses)
    auto_approve: bool = True
    stubs: dict[str, list[StubMatch]] = Field(default_factory=dict)
    cases: list[Case] = Field(min_length=1)
    #: the directory relative `paths` are resolved from (set by `load_golden`)
    base_dir: Path = Path(".")

    @model_validator(mode="after")
    def _unique_ids(self) -> GoldenFile:
        seen: set[str] = set()
        for c in self.cases:
            if c.id in seen:
                raise ValueError(f"duplicate case id {c.id!r}")
            seen.add(c.id)
        return self

    def stubs_for(self, case: Case) -> dict[str, list[StubMatch]]:
        """The file's recorded results, overridden tool by tool by the case's own."""
        return {**self.stubs, **case.stubs}


def load_golden(path: str | Path) -> GoldenFile:
    """Read and validate a golden YAML file (needs PyYAML: ``pip install 'callgate[eval]'``)."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CallgateError(
            "golden files are YAML: install PyYAML (pip install 'callgate[eval]')"
        ) from exc
    p = Path(path)
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise CallgateError(f"{p}: a golden file is a mapping with a 'cases' list")
    data["base_dir"] = p.resolve().parent
    return GoldenFile.model_validate(data)
