"""The pure parts of the gate's stages: argument decoding and validation, and combining the
policy's decision with the call checks'. No I/O, no state: `Gate` wires them in order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callgate.dialects.export import restore_strict_nulls
from callgate.gate.decode import DecodeLimits, decode_arguments
from callgate.gate.protocols import SEVERITY, CallCheck, Invocation, PolicyDecision
from callgate.tools.definition import Tool
from callgate.tools.schema import ArgumentsInvalid, FieldIssue


def validate_arguments(tool: Tool, raw: Any, limits: DecodeLimits) -> dict[str, Any]:
    """Decode and validate a call's arguments; raises `ArgumentsInvalid` with every problem.

    This is the thorough path: the decoder reports duplicate keys, NaN, depth and size problems
    precisely. The gate tries the validator's one-pass `fast_json` first and comes here only
    when that fails or cannot apply."""
    validator = tool.validator
    decoded = decode_arguments(raw, limits)
    # nulls for optional non-nullable parameters, at any depth (strict mode)
    if has_null(raw):
        decoded = drop_nulls(decoded, validator.null_means_omitted, tool)
    args: dict[str, Any] = validator.validate(decoded)
    if tool.required_ids:
        check_required_ids(tool, args)
    return args


def decoded_or_raw(raw: Any, limits: DecodeLimits) -> Any:
    """The arguments as well as they can be decoded, for records of calls refused before
    validation (so the audit log redacts them field by field)."""
    try:
        return decode_arguments(raw, limits)
    except ArgumentsInvalid:
        return raw


def escalate(
    decision: PolicyDecision, inv: Invocation, checks: Sequence[CallCheck]
) -> PolicyDecision:
    """The strictest of the policy's decision and the call checks' (deny > approve > allow)."""
    for check in checks:
        d = check.decide(inv)
        if d is not None and SEVERITY[d.effect] > SEVERITY[decision.effect]:
            decision = d
            if d.effect == "deny":
                break
    return decision


def has_null(raw: Any) -> bool:
    """Whether the arguments contain a null anywhere (cheap on text: a substring test)."""
    if isinstance(raw, str):
        return "null" in raw
    if raw is None:
        return True
    if isinstance(raw, dict):
        return any(has_null(v) for v in raw.values())
    if isinstance(raw, list):
        return any(has_null(v) for v in raw)
    return False


def drop_nulls(args: dict[str, Any], names: frozenset[str], tool: Tool) -> dict[str, Any]:
    """A null sent for an optional, non-nullable parameter means "not given" (OpenAI strict
    mode makes every optional parameter nullable); nested ones are restored by the dialect."""
    out = {k: v for k, v in args.items() if not (v is None and k in names)}
    try:
        restored: dict[str, Any] = restore_strict_nulls(out, tool.spec.parameters)
    except Exception:  # noqa: BLE001 - restoring is best effort; validation still runs
        return out
    return restored


def param_descriptions(tool: Tool) -> dict[str, str]:
    props = tool.spec.parameters.get("properties", {})
    return {
        k: v["description"]
        for k, v in props.items()
        if isinstance(v, dict) and isinstance(v.get("description"), str) and v["description"]
    }


def check_required_ids(tool: Tool, args: dict[str, Any]) -> None:
    """Required identifier parameters may not be empty strings (a model's favourite filler)."""
    bad = [k for k in tool.required_ids if isinstance(args.get(k), str) and not args[k].strip()]
    if bad:
        raise ArgumentsInvalid(
            [
                FieldIssue(
                    (k,),
                    "value",
                    "must be a non-empty identifier",
                    expected="a non-empty identifier",
                    given=args[k],
                    has_given=True,
                )
                for k in bad
            ]
        )
