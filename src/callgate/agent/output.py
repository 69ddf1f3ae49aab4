"""Structured output: the run's final answer as a typed value, produced through a tool.

`Agent(..., output_type=Invoice)` offers the model one more tool, `final_result`, whose
parameters are the JSON Schema of the output type (a Pydantic model, a dataclass, a TypedDict,
or a union of them). The model answers by calling it; the call goes through a gate of its own
(decode ▸ validate ▸ decide ▸ settle, with the run's observers and correction budget), so a
wrong-typed answer comes back with the same field-level error text as any tool call, and the
application gets the validated value back in `RunResult.output`.

Why a tool and not a parsed text reply: every provider (and the local model's grammar) already
constrains tool arguments to a schema, so the answer is shaped by the model's own decoder, and a
model that answers with the tool directly needs no extra turn. The tool has no side effect: its
callable only converts the validated arguments into the typed value.

An output type that is not an object (a union, a list) is wrapped as ``{"result": ...}``, since
tool parameters must be an object.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypeVar, is_typeddict

from callgate.errors import ToolRetry
from callgate.gate.core import Gate
from callgate.tools.definition import ExecutionOptions, Tool, ToolAnnotations
from callgate.tools.schema import clean_schema

OutputT = TypeVar("OutputT", default=str)

#: the name of the final-result tool unless the application chooses another
FINAL_RESULT = "final_result"

OUTPUT_PROMPT = (
    "When you have the answer, give it by calling the `{name}` tool with the result; do not "
    "answer in plain text."
)
TEXT_REFUSED = (
    "Your answer was not accepted: this request needs a structured result. Call the `{name}` "
    "tool with your answer (its parameters are the fields of the result)."
)
NOT_ALONE = (
    "Error: {name} was not accepted because it was called together with other tools in the "
    "same turn. Wait for their results, then call {name} on its own."
)


@dataclass(frozen=True, slots=True)
class OutputSpec(Generic[OutputT]):
    """How a run's typed result is asked for and checked.

    `wrapped` is True when the value travels in a ``result`` field (types that are not an
    object). `gate` validates and records final-result calls; it shares the run's observers.
    """

    output_type: Any
    tool: Tool
    wrapped: bool
    gate: Gate

    @property
    def name(self) -> str:
        return self.tool.name

    def prompt(self) -> str:
        return OUTPUT_PROMPT.format(name=self.name)

    def text_refused(self) -> str:
        return TEXT_REFUSED.format(name=self.name)

    def not_alone(self) -> str:
        return NOT_ALONE.format(name=self.name)


def _is_object_type(tp: Any) -> bool:
    """Types whose JSON Schema is an object with properties, usable as tool parameters as-is."""
    if isinstance(tp, type):
        from pydantic import BaseModel

        if issubclass(tp, BaseModel) or dataclasses.is_dataclass(tp):
            return True
    return bool(is_typeddict(tp))


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def output_members(tp: Any) -> tuple[Any, ...]:
    """The types a union output may be (the type itself otherwise)."""
    return tuple(typing.get_args(tp)) if _is_union(tp) else (tp,)


def output_schema(tp: Any) -> tuple[dict[str, Any], bool]:
    """The final-result tool's parameters for `tp`, and whether the value is wrapped."""
    schema = TypeAdapter(tp).json_schema()
    if _is_object_type(tp) and schema.get("type") == "object":
        return clean_schema(schema), False
    defs = schema.pop("$defs", None)
    wrapped: dict[str, Any] = {
        "type": "object",
        "properties": {"result": schema},
        "required": ["result"],
    }
    if defs:
        wrapped["$defs"] = defs
    return clean_schema(wrapped), True


def _issue_text(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:10]:
        where = ".".join(str(p) for p in e["loc"]) or "(arguments)"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def build_output(
    output_type: Any,
    gate: Gate,
    *,
    name: str = FINAL_RESULT,
    description: str | None = None,
    max_corrections: int = 3,
) -> OutputSpec[Any]:
    """The final-result tool for `output_type` and the gate that checks its calls.

    The gate shares `gate`'s observers (so final results are recorded in the same audit log),
    decode limits and run-wide correction budget (the counts live on the `RunContext`).
    """
    for member in output_members(output_type):
        if not (_is_object_type(member) or member in (str, int, float, bool)):
            TypeAdapter(member)  # raises a clear PydanticSchemaGenerationError when unusable
    params, wrapped = output_schema(output_type)
    adapter: TypeAdapter[Any] = TypeAdapter(output_type)

    def final_result(**fields: Any) -> Any:
        """Turn the validated arguments into the typed value (no side effect)."""
        try:
            return adapter.validate_python(fields["result"] if wrapped else fields)
        except ValidationError as e:
            raise ToolRetry(f"The result is not valid: {_issue_text(e)}.") from None

    desc = description or _describe(output_type)
    tool = Tool.from_schema(
        name,
        desc,
        params,
        final_result,
        annotations=ToolAnnotations(read_only=True, idempotent=True),
        options=ExecutionOptions(
            timeout_s=None, max_retries=0, inline=True, max_corrections=max_corrections
        ),
    )
    own = Gate(
        [tool],
        limits=gate.limits,
        max_corrections_per_run=gate.max_corrections_per_run,
        max_result_chars=gate.max_result_chars,
    )
    own.observers = gate.observers  # the same list: observers added later see final results too
    return OutputSpec(output_type, tool, wrapped, own)


def _describe(tp: Any) -> str:
    names = [getattr(m, "__name__", str(m)) for m in output_members(tp)]
    doc = ""
    if len(names) == 1 and isinstance(tp, type) and tp.__doc__ and not dataclasses.is_dataclass(tp):
        doc = " " + " ".join(tp.__doc__.split())
    elif len(names) == 1 and isinstance(tp, type) and dataclasses.is_dataclass(tp) and tp.__doc__:
        first = tp.__doc__.strip()
        if not first.startswith(f"{tp.__name__}("):  # the generated signature says nothing
            doc = " " + " ".join(first.split())
    kinds = " or ".join(names)
    return f"Give the final answer to the user's request as a {kinds}.{doc}"


def split_calls(calls: Sequence[Any], name: str) -> tuple[list[int], list[int]]:
    """Positions of final-result calls and of every other call in a turn."""
    finals = [i for i, c in enumerate(calls) if c.name == name]
    others = [i for i, c in enumerate(calls) if c.name != name]
    return finals, others


__all__ = ["FINAL_RESULT", "OutputSpec", "OutputT", "build_output", "output_schema"]
