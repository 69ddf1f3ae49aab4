"""Provider adapters: each translates one provider's wire format to callgate's neutral types.

Names are loaded on first use, so importing this package never imports an optional SDK (or
llama.cpp) that the application does not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callgate._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "AnthropicModel": "callgate.providers.anthropic",
    "GeminiModel": "callgate.providers.gemini",
    "LocalModel": "callgate.providers.local.model",
    "OpenAIChatModel": "callgate.providers.openai.chat",
    "OpenAIResponsesModel": "callgate.providers.openai.responses",
    "RetryPolicy": "callgate.providers._retry",
    "parse_text_tool_calls": "callgate.providers.textcalls",
}

__all__ = [
    "AnthropicModel",
    "GeminiModel",
    "LocalModel",
    "OpenAIChatModel",
    "OpenAIResponsesModel",
    "RetryPolicy",
    "parse_text_tool_calls",
]

if TYPE_CHECKING:
    from callgate.providers._retry import RetryPolicy
    from callgate.providers.anthropic import AnthropicModel
    from callgate.providers.gemini import GeminiModel
    from callgate.providers.local.model import LocalModel
    from callgate.providers.openai.chat import OpenAIChatModel
    from callgate.providers.openai.responses import OpenAIResponsesModel
    from callgate.providers.textcalls import parse_text_tool_calls


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
