"""Collections of tools: registration, run-time switches, versions, namespaces and filters.

A `Toolset` answers two questions for the gate: "which tools may this run see?" (list time) and
"which tool does this name mean for this run?" (call time). Both go through the same filters, so
a tool hidden from a run is also unknown to it when called by name. Changes (register,
unregister, enable, disable, new default version) take effect on the next call, including calls a
model already proposed.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from callgate.context import RunContext
from callgate.errors import SchemaError
from callgate.tools.definition import Tool, check_tool_name

Filter = Callable[[Tool, RunContext], bool]


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions naturally ("2" < "10", "1.9" < "1.10"); numbers sort before words."""
    parts = re.findall(r"\d+|[^\d.\-_]+", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


@dataclass(slots=True)
class _Entry:
    versions: dict[str, Tool] = field(default_factory=dict)
    default: str | None = None
    tenants: frozenset[str] | None = None  # None: every tenant
    roles: frozenset[str] | None = None  # None: every role
    enabled: bool = True
    disabled_note: str | None = None


class Toolset:
    """A mutable, thread-safe registry of tools.

    >>> ts = Toolset([search, schedule])          # doctest: +SKIP
    >>> ts.disable("schedule", note="maintenance") # doctest: +SKIP

    Several versions of a tool can be live side by side: the model sees the default one under the
    plain name; a pinned version can be called as ``name@version`` only by code, never shown to a
    model. Tenant- and role-scoped tools are visible only to matching runs.
    """

    def __init__(self, tools: Iterable[Tool] = (), *, namespace: str | None = None) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._filters: list[Filter] = []
        self._namespace = namespace
        self._generation = 0
        # name -> (default tool, entry) for lock-free lookups on the hot path; kept up to date
        # name by name on change
        self._index: dict[str, tuple[Tool, _Entry]] = {}
        # the default version of every tool, in registration order; rebuilt after a change
        self._defaults: list[tuple[Tool, _Entry]] | None = None
        self.register_many(tools)

    # registration ------------------------------------------------------------------------

    def register(
        self,
        tool: Tool,
        *,
        tenants: Iterable[str] | None = None,
        roles: Iterable[str] | None = None,
        default: bool = True,
        replace: bool = False,
    ) -> Tool:
        """Add a tool (or a new version of one). Returns the tool as registered (prefixed when
        the toolset has a namespace). Constant time: only this name's index entry changes."""
        (out,) = self.register_many(
            [tool], tenants=tenants, roles=roles, default=default, replace=replace
        )
        return out

    def register_many(
        self,
        tools: Iterable[Tool],
        *,
        tenants: Iterable[str] | None = None,
        roles: Iterable[str] | None = None,
        default: bool = True,
        replace: bool = False,
    ) -> list[Tool]:
        """Add several tools at once, under one lock and one change of `generation`. All or
        nothing: when one of them clashes with a registered tool (or with another in the
        batch), none is added."""
        tenant_set = frozenset(tenants) if tenants is not None else None
        role_set = frozenset(roles) if roles is not None else None
        named = [self._named(t) for t in tools]
        with self._lock:
            seen: set[tuple[str, str]] = set()
            for t in named:
                key = (t.name, t.version or "1")
                entry = self._entries.get(t.name)
                clash = entry is not None and key[1] in entry.versions and not replace
                if clash or (key in seen and not replace):
                    raise SchemaError(
                        f"tool {t.name!r} version {key[1]!r} is already registered; "
                        "pass replace=True to replace it or give it a new version"
                    )
                seen.add(key)
            for t in named:
                self._add(t, tenant_set, role_set, default)
            self._changed(t.name for t in named)
        return named

    def _named(self, tool: Tool) -> Tool:
        if not hasattr(tool, "spec"):
            raise TypeError(
                f"a toolset holds Tool objects, got {type(tool).__name__}; decorate the "
                "function with @tool or build it with Tool.from_function"
            )
        return tool.renamed(f"{self._namespace}_{tool.name}") if self._namespace else tool

    def _add(
        self,
        tool: Tool,
        tenants: frozenset[str] | None,
        roles: frozenset[str] | None,
        default: bool,
    ) -> None:
        version = tool.version or "1"
        entry = self._entries.get(tool.name)
        if entry is None:
            entry = _Entry()
            self._entries[tool.name] = entry
        entry.versions[version] = tool
        if default or entry.default is None:
            entry.default = version
        if tenants is not None:
            entry.tenants = tenants
        if roles is not None:
            entry.roles = roles

    def unregister(self, name: str, version: str | None = None) -> None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                raise KeyError(name)
            if version is None:
                del self._entries[name]
            else:
                entry.versions.pop(version)
                if not entry.versions:
                    del self._entries[name]
                elif entry.default == version:
                    entry.default = max(entry.versions, key=version_key)
            self._changed([name])

    def set_default_version(self, name: str, version: str) -> None:
        with self._lock:
            entry = self._entries[name]
            if version not in entry.versions:
                raise KeyError(f"{name}@{version}")
            entry.default = version
            self._changed([name])

    def deprecate(self, name: str, version: str, note: str) -> None:
        with self._lock:
            t = self._entries[name].versions[version]
            t.deprecated = note
            self._changed([name])

    # run-time switches -------------------------------------------------------------------

    def disable(self, pattern: str, *, note: str | None = None) -> list[str]:
        """Emergency off switch: every tool whose name matches the glob stops running at once,
        including calls already proposed. Returns the names switched off."""
        return self._switch(pattern, False, note)

    def enable(self, pattern: str) -> list[str]:
        return self._switch(pattern, True, None)

    def _switch(self, pattern: str, on: bool, note: str | None) -> list[str]:
        with self._lock:
            names = [n for n in self._entries if fnmatch.fnmatchcase(n, pattern)]
            for n in names:
                self._entries[n].enabled = on
                self._entries[n].disabled_note = note
            self._changed(names)
        return names

    def add_filter(self, f: Filter) -> None:
        """A list-time and call-time filter: tools for which it returns False are invisible and
        unknown to that run."""
        with self._lock:
            self._filters.append(f)
            self._changed(())

    def _changed(self, names: Iterable[str]) -> None:
        """Record a change: bump `generation`, refresh the index entries of `names` only (so
        registering n tools costs O(n), not O(n^2)) and drop the cached default list."""
        self._generation += 1
        for n in names:  # single-key updates: lock-free readers see old or new, never half
            e = self._entries.get(n)
            if e is None or e.default is None:
                self._index.pop(n, None)
            else:
                self._index[n] = (e.versions[e.default], e)
        self._defaults = None

    # queries -----------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Changes whenever the set changes (lets callers cache derived data)."""
        return self._generation

    @property
    def filtered(self) -> bool:
        """Whether filters were added: they are arbitrary code over the whole run context, so
        what a run sees cannot be cached by its identity alone."""
        return bool(self._filters)

    def _allowed(self, entry: _Entry, tool: Tool, ctx: RunContext) -> bool:
        if entry.tenants is not None and ctx.tenant not in entry.tenants:
            return False
        if entry.roles is not None and not (entry.roles & ctx.roles):
            return False
        if self._filters:
            return all(f(tool, ctx) for f in self._filters)
        return True

    def visible(self, ctx: RunContext) -> list[Tool]:
        """Enabled default versions this run may see."""
        with self._lock:
            defaults = self._defaults
            if defaults is None:
                defaults = [
                    (e.versions[e.default], e)
                    for e in self._entries.values()
                    if e.default is not None
                ]
                self._defaults = defaults
            return [t for t, e in defaults if e.enabled and self._allowed(e, t, ctx)]

    def resolve(self, name: str, ctx: RunContext) -> tuple[Tool | None, str | None]:
        """Find the tool a call means for this run.

        Returns (tool, None) when it may run; (None, None) when unknown or invisible to this run
        (the two are indistinguishable to a model on purpose); (tool, note) when it exists but is
        disabled, with the operator's note."""
        hit = self._index.get(name)
        if hit is not None:  # the common case: a plain name, default version
            t, entry = hit
            if not self._allowed(entry, t, ctx):
                return None, None
            if not entry.enabled:
                return t, entry.disabled_note or "It was switched off by an operator."
            return t, None
        base, _, version = name.partition("@")
        if not version:
            return None, None
        with self._lock:
            pinned_entry = self._entries.get(base)
            if pinned_entry is None:
                return None, None
            pinned = pinned_entry.versions.get(version)
            if pinned is None or not self._allowed(pinned_entry, pinned, ctx):
                return None, None
            if not pinned_entry.enabled:
                return pinned, pinned_entry.disabled_note or "It was switched off by an operator."
            return pinned, None

    def names(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def get(self, name: str, version: str | None = None) -> Tool:
        with self._lock:
            entry = self._entries[name]
            return entry.versions[version or entry.default or ""]

    def versions(self, name: str) -> list[str]:
        with self._lock:
            return sorted(self._entries[name].versions, key=version_key)

    def __iter__(self) -> Iterator[Tool]:
        with self._lock:
            tools = [e.versions[e.default] for e in self._entries.values() if e.default]
        return iter(tools)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    # composition -------------------------------------------------------------------------

    @classmethod
    def combine(cls, *toolsets: Toolset | Iterable[Tool]) -> Toolset:
        """A new toolset holding the default versions of several others (names must not clash)."""
        out = cls()
        for ts in toolsets:
            for t in ts:
                if t.name in out:
                    raise SchemaError(
                        f"tool name {t.name!r} is defined twice; give one of them a namespace"
                    )
                out.register(t)
        return out

    def prefixed(self, prefix: str) -> Toolset:
        """A copy with every name prefixed (``prefix_name``)."""
        check_tool_name(f"{prefix}_x")
        return Toolset(list(self), namespace=prefix)
