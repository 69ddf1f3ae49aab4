"""Provenance annotations: what a tool's parameters refer to, and how to read its output.

These are plain data on `ToolAnnotations`; the check that reads them lives in
`callgate.gate.middleware.provenance`. They sit here, beside the tool definition, because a
tool's author is the one who knows that ``file_id`` names a *file* and that ``list_channels``
returns the application's own channel list.

A **sink** is a parameter whose value must be traceable to the user (a recipient, an account,
the id of a thing to delete or share). Its `kind` says what sort of object it refers to, so an
id is trusted only through an object *of that kind* the user named: a calendar event called
"Budget" with id 13 never vouches for a *file* 13.

A **source** says how to read a tool's output as objects (`kind`, which fields are ids), and
whether the output is a trusted source (the application's own directory or channel list) whose
values count like the user's own words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: kinds whose value is itself an address: they may be vouched for by any object the user named
#: (a contact's email, a bill's IBAN), and they are looked for inside free text
VALUE_KINDS: frozenset[str] = frozenset({"email", "url", "phone", "account"})

SinkAction = Literal["approve", "deny"]


@dataclass(frozen=True, slots=True)
class ProvenanceSink:
    """One sink parameter.

    - `kind`: what the value refers to: an address (``email``, ``url``, ``phone``, ``account``)
      or an object kind of the application (``file``, ``event``, ``user``, ``channel``...).
      ``any`` accepts an object of any kind (the old, untyped behaviour).
    - `action`: what an untraceable value asks for on this parameter (None: the check's
      default), so a payee account can be refused while a file id only needs approval.
    - `free_text`: the parameter is prose (a message body); only the links, addresses and phone
      numbers inside it are checked, and only those copied from untrusted output are flagged.
    - `min_digits`: a purely numeric value shorter than this matches the user's text only where
      the user wrote it as an id ("file 13", "#13"); None uses the check's default (5).
    """

    kind: str = "any"
    action: SinkAction | None = None
    free_text: bool = False
    min_digits: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError("ProvenanceSink.kind must be a non-empty string")
        if self.action not in (None, "approve", "deny"):
            raise ValueError("ProvenanceSink.action must be 'approve', 'deny' or None")


#: a tool-provided reader: the tool's result data (or parsed content) -> objects as mappings;
#: a mapping may carry its kind under the key "kind"
Extractor = Callable[[Any], Iterable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class ProvenanceSource:
    """How to read one tool's output as objects, and whether to trust it.

    - `kind`: the kind of the objects the tool returns (``file`` for ``search_files``); without
      it, a kind is taken from the object's own ``kind``/``type`` field, from the key holding a
      list (``{"files": [...]}`` holds files) or from a ``<kind>_id`` field.
    - `id_fields`: the fields that hold an object's id (default: ``id`` and ``<kind>_id``).
    - `trusted`: the whole output counts like the user's own words (the app's directory).
    - `trusted_fields`: only these fields do (a directory whose ``status`` text anyone can edit).
    - `name_fields`: the only fields that name an object (``("name",)`` for contacts); by
      default any short field that is not an id, a date, an amount or prose. Declare them when
      other fields are written by outsiders (an email's subject names nothing you can trust).
    - `extract`: a reader for outputs that are neither data, JSON nor YAML.
    """

    kind: str | None = None
    id_fields: tuple[str, ...] = ()
    name_fields: tuple[str, ...] = ()
    trusted: bool = False
    trusted_fields: frozenset[str] = frozenset()
    extract: Extractor | None = None

    @property
    def is_trusted(self) -> bool:
        return self.trusted or bool(self.trusted_fields)


SinksArg = Iterable[str] | Mapping[str, "str | ProvenanceSink"]


def normalize_sinks(sinks: SinksArg | None) -> dict[str, ProvenanceSink]:
    """Accept the forms people write (a list of names, name -> kind, name -> sink) and return one.

    A bare name gets kind ``any``, the untyped behaviour of earlier versions.
    """
    if not sinks:
        return {}
    if isinstance(sinks, str):
        raise TypeError("provenance_sinks takes parameter names, not one string")
    if isinstance(sinks, Mapping):
        out: dict[str, ProvenanceSink] = {}
        for name, spec in sinks.items():
            if isinstance(spec, ProvenanceSink):
                out[str(name)] = spec
            elif isinstance(spec, str):
                out[str(name)] = ProvenanceSink(spec)
            else:
                raise TypeError(f"provenance sink {name!r}: expected a kind or a ProvenanceSink")
        return out
    return {str(name): ProvenanceSink() for name in sinks}
