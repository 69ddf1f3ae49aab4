"""OpenAI: Chat Completions (and any OpenAI-compatible server) and Responses."""

from callgate.providers.openai.chat import OpenAIChatModel
from callgate.providers.openai.responses import OpenAIResponsesModel

__all__ = ["OpenAIChatModel", "OpenAIResponsesModel"]
