"""Loading names and objects by import path, in one place.

- `lazy_exports`: the module-level ``__getattr__`` / ``__dir__`` pair of a package that loads its
  public names on first use, so importing the package never pays for (or needs) an optional SDK
  the application does not use.
- `import_object`: the object a ``module:attribute`` string names, as the command line and the
  configuration files spell tools, gates and datasets.

Imports nothing from callgate, so every package (the root one included) can use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["import_object", "lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for `package`, whose public names map to the module that
    defines each (`exports`). A loaded name is cached in the package's `namespace` (its
    ``globals()``), so the import happens once and later lookups never reach ``__getattr__``."""

    def load(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def names() -> list[str]:
        return sorted({*namespace, *exports})

    return load, names


def import_object(spec: str) -> Any:
    """The object ``module:attribute`` names (the attribute may be dotted: ``pkg.mod:obj.attr``).

    Raises ValueError for a spec without both parts; ImportError / AttributeError as Python
    raises them when the module or the attribute is missing."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected MODULE:ATTRIBUTE, got {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
