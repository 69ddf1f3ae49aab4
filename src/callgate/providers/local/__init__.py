"""The embedded llama.cpp model, constrained by grammars compiled from the tools' schemas."""

from callgate.providers.local.model import LocalModel, default_model_path

__all__ = ["LocalModel", "default_model_path"]
