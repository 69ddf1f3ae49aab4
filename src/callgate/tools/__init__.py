"""Tools: what runs (`Tool`), what the model sees (`ToolSpec`), `@tool`, and `Toolset`."""

from callgate.tools.definition import ExecutionOptions, Tool, ToolAnnotations, ToolSpec, tool
from callgate.tools.toolset import Toolset

__all__ = ["ExecutionOptions", "Tool", "ToolAnnotations", "ToolSpec", "Toolset", "tool"]
