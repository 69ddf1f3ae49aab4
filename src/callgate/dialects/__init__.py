"""Tool definitions in each provider's dialect: OpenAI Chat and Responses (strict mode
included), Anthropic, and Gemini's OpenAPI subset."""

from callgate.dialects.export import export_tools, to_anthropic, to_openai_chat, to_openai_responses
from callgate.dialects.gemini import to_gemini
from callgate.dialects.strict import restore_strict_nulls, strict_compatible, strict_schema

__all__ = [
    "export_tools",
    "restore_strict_nulls",
    "strict_compatible",
    "strict_schema",
    "to_anthropic",
    "to_gemini",
    "to_openai_chat",
    "to_openai_responses",
]
