"""Who is asking, and on whose behalf: the run context every decision is made against."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Generic

from typing_extensions import TypeVar

#: the application's own dependencies carried by a run (a DB handle, a client); `Any` when the
#: context is written without a type argument
Deps = TypeVar("Deps", default=Any)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass(slots=True)
class RunContext(Generic[Deps]):
    """Identity and state of one run, passed to list-time filters, the gate and (on request) tools.

    A tool receives it by declaring a parameter annotated `RunContext` (or `RunContext[MyDeps]`,
    so `ctx.deps` is typed in the tool's body); such a parameter never appears in the schema the
    model sees.

    `request` is the user's original request (trusted input: provenance checks compare sink
    arguments against it). `deps` carries the application's own dependencies (a DB handle, a
    client) so tools need no globals; it is None until the application sets it, whatever the
    type argument says (a context is often built before its dependencies exist).
    """

    user_id: str | None = None
    roles: frozenset[str] = frozenset()
    tenant: str | None = None
    request: str | None = None
    conversation_id: str = field(default_factory=lambda: new_id("conv"))
    run_id: str = field(default_factory=lambda: new_id("run"))
    turn: int = 0
    deps: Deps = None  # type: ignore[assignment]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: correction attempts used in this run, per tool name and in total ("*"); kept by the gate
    corrections: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.roles, frozenset):
            self.roles = frozenset(self.roles)

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)
