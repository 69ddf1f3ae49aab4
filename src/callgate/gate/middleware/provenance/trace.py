"""Tracing one argument value to where it came from.

The sources, in the order they are tried (the first that vouches for the value wins):

1. ``user``: the whole value occurs in the user's words (`RunContext.request`, user messages,
   the application's system messages) — see `text.TextIndex.find` for what "whole" means;
2. ``approved``: a person approved this value earlier in the run;
3. ``trusted_tool``: a tool declared a trusted source returned it (as a whole field);
4. ``named_object``: it is an id (or an address field) of an object *of the sink's kind* that
   the user named;
5. otherwise ``untrusted``, with why: copied from which tool output, or found nowhere.

A structured value found nowhere, not even in tool output, was written by the model
(``constant``); with ``unseen="untrusted"`` it is untrusted too, which also stops an injection
that has the model re-spell a value ("attacker at evil dot com"). In a free-text sink (a message
body) only the links, addresses and phone numbers are traced, and only those copied from tool
output count against the call: the model writes prose itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from callgate.gate.middleware.provenance.objects import Obj, Output, named_objects
from callgate.gate.middleware.provenance.text import (
    DEFAULT_MIN_DIGITS,
    MAX_VALUE_TOKENS,
    TOKEN,
    TextIndex,
    addresses_in,
    classify,
    same_value,
)
from callgate.gate.protocols import ArgumentSource, SourceKind
from callgate.tools.provenance import VALUE_KINDS, ProvenanceSink

_MAX_RECORDED = 200


@dataclass(frozen=True, slots=True)
class TrustedValue:
    """A field value of a trusted source, with the names of the object it belongs to."""

    kind: str | None  # the object's kind for an id field, None for any other field
    value: str
    label: str  # "tool (call id)"
    names: tuple[str, ...] = ()


@dataclass(slots=True)
class Evidence:
    """What one call's arguments are traced against."""

    trusted: TextIndex
    outputs: list[Output]
    trusted_values: list[TrustedValue]
    #: (sink kind, normalised value) -> approval detail
    approved: Mapping[tuple[str, str], str]
    min_digits: int = DEFAULT_MIN_DIGITS
    #: a structured value found nowhere (not in any tool output either): "untrusted" (strict,
    #: survives an injection that spells a value out) or "constant" (the model wrote it)
    unseen: SourceKind = "constant"
    _prose: TextIndex | None = None

    @property
    def objects(self) -> list[Obj]:
        return [o for out in self.outputs for o in out.objects]

    def prose(self) -> TextIndex:
        """The untrusted outputs' prose: where an injected instruction would be written."""
        if self._prose is None:
            self._prose = TextIndex([t for out in self.outputs for t in out.prose])
        return self._prose


def _short(value: str) -> str:
    return value if len(value) <= _MAX_RECORDED else value[: _MAX_RECORDED - 1] + "…"


def trace_value(path: str, value: str, sink: ProvenanceSink, ev: Evidence) -> ArgumentSource:
    """Where one structured sink value came from."""
    if len(TOKEN.findall(value)) > MAX_VALUE_TOKENS:
        return ArgumentSource(path, _short(value), "untrusted", "too long to trace")
    found = _vouched(value, sink, ev)
    if found is not None:
        source, detail = found
        return ArgumentSource(path, _short(value), source, detail)
    hits = _copied_from(value, ev)
    suggested = _suggested(value, sink, ev)
    if hits or suggested:
        detail = _copied(hits) + "; " if hits else ""
        detail += "not in the user's words nor in an object the user named"
        if suggested:
            detail += f"; {suggested} lists it, but tool output text suggested this pick"
        return ArgumentSource(path, _short(value), "untrusted", detail)
    why = "found in no tool output: written by the model"
    if ev.unseen == "untrusted":
        why = "not in the user's words, a trusted source, an approval or any tool output"
    return ArgumentSource(path, _short(value), ev.unseen, why)


def trace_free_text(path: str, text: str, ev: Evidence) -> list[ArgumentSource]:
    """The links, addresses and numbers inside a prose argument, each with its source."""
    out: list[ArgumentSource] = []
    for address in addresses_in(text):
        kind, _ = classify(address)
        sink = ProvenanceSink({"email": "email", "url": "url"}.get(kind, "phone"))
        found = _vouched(address, sink, ev)
        if found is not None:
            out.append(ArgumentSource(path, _short(address), found[0], found[1]))
            continue
        hits = _copied_from(address, ev)
        if hits:
            out.append(ArgumentSource(path, _short(address), "untrusted", _copied(hits)))
        else:
            out.append(ArgumentSource(path, _short(address), "constant", "written by the model"))
    return out


def _vouched(value: str, sink: ProvenanceSink, ev: Evidence) -> tuple[SourceKind, str] | None:
    min_digits = sink.min_digits if sink.min_digits is not None else ev.min_digits
    kind_word = "" if sink.kind in VALUE_KINDS or sink.kind == "any" else sink.kind
    where = ev.trusted.find(value, min_digits=min_digits, kind_word=kind_word)
    if where is not None:
        return "user", f"the user's words ({where})"
    _, norm = classify(value)
    for key in ((sink.kind, norm), ("any", norm)):
        if key in ev.approved:
            return "approved", ev.approved[key]
    trusted = _trusted_source(value, sink, ev)
    if trusted is not None:
        return trusted
    named = _named_object(value, sink, ev)
    if named is not None:
        return "named_object", named
    return None


def _trusted_source(
    value: str, sink: ProvenanceSink, ev: Evidence
) -> tuple[SourceKind, str] | None:
    """A trusted source vouches for a value unless untrusted prose suggested that very pick:
    "DM Erin the numbers" in a channel log makes Erin's id (from the trusted directory) a choice
    the injection made, not the application."""
    for tv in ev.trusted_values:
        ok_kind = tv.kind is None or sink.kind in (tv.kind, "any") or sink.kind in VALUE_KINDS
        if not ok_kind or not same_value(tv.value, value):
            continue
        if any(ev.prose().occurs(x) for x in (value, *tv.names)):
            continue
        return "trusted_tool", f"trusted source {tv.label}"
    return None


def _suggested(value: str, sink: ProvenanceSink, ev: Evidence) -> str:
    """The trusted source that lists the value, when only the prose rule refused it."""
    for tv in ev.trusted_values:
        ok_kind = tv.kind is None or sink.kind in (tv.kind, "any") or sink.kind in VALUE_KINDS
        if ok_kind and same_value(tv.value, value):
            return f"trusted source {tv.label}"
    return ""


def _relevant(obj: Obj, kind: str) -> bool:
    if kind == "any":
        return True
    if kind in VALUE_KINDS:
        want = {"email": "email", "url": "url"}.get(kind, "code")
        return any(classify(v)[0] == want for _, v in obj.fields)
    return obj.kind == kind or any(k == kind for k, _ in obj.ids)


def _named_object(value: str, sink: ProvenanceSink, ev: Evidence) -> str | None:
    objects = [o for o in ev.objects if _relevant(o, sink.kind)]
    if not objects:
        return None
    addresses = sink.kind in VALUE_KINDS or sink.kind == "any"
    for i, naming in named_objects(objects, ev.trusted, addresses=addresses).items():
        obj = objects[i]
        if sink.kind in VALUE_KINDS:
            hit = any(same_value(v, value) for _, v in obj.fields)
        elif sink.kind == "any":
            hit = any(same_value(v, value) for _, v in obj.ids) or any(
                same_value(v, value) for _, v in obj.fields
            )
        else:
            hit = any(k == sink.kind and same_value(v, value) for k, v in obj.ids)
        if hit:
            how = "named" if naming.whole else "named in part"
            return (
                f"{obj.kind or 'object'} {value!r} from {obj.label} {how} by the user as "
                f"{naming.words!r} (field {naming.field!r})"
            )
    return None


def _copied_from(value: str, ev: Evidence) -> list[str]:
    hits = []
    for out in ev.outputs:
        if out.index().occurs(value):
            hits.append(out.label)
    return hits


def _copied(hits: Sequence[str]) -> str:
    return "copied from tool output: " + ", ".join(hits)
