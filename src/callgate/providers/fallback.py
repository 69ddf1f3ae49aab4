"""Model fallback and split models: which model takes a turn.

`FallbackModel([primary, secondary, ...])` asks the models in order. A failure that is not the
caller's fault (HTTP 5xx, 429 once the provider's own retries ran out, timeouts, connection
errors) passes the turn to the next model; anything else (a bad request, an authentication
error, a request no provider can send) is raised at once, since another model would fail the
same way or hide a bug. Each model receives the same neutral `ModelRequest`, so it sees the same
tools in its own dialect. The response says which model answered (`ModelResponse.model`) and
which failed before it, and why (`ModelResponse.fallbacks`); the agent puts both on the turn's
`TurnRecord`, hence in the audit log.

`SplitModel(tools=small, answer=large)` lets a small, cheap model do the tool-calling turns and
a larger one write the answer: the small model takes each turn; when it answers instead of
calling a tool, the same request goes to the large model, whose reply is the turn. The small
model's discarded answer is still counted in the turn's usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence

from callgate.errors import InvalidModelRequest, ModelError
from callgate.models import Fallback, Model, ModelRequest, ModelResponse, ModelStreamEvent
from callgate.providers._retry import classify_exception


def not_callers_fault(exc: BaseException) -> bool:
    """True for failures another model could avoid: 5xx, 429 after retries, timeouts and
    connection errors (a `ModelError` marked retryable, or a raw transport exception)."""
    if isinstance(exc, InvalidModelRequest):
        return False
    if isinstance(exc, ModelError):
        return exc.retryable
    failure = classify_exception(exc)
    return failure is not None and failure.retryable


def _note(model: Model, exc: BaseException) -> Fallback:
    status = getattr(exc, "status", None)
    return Fallback(
        model=model.name,
        error=f"{type(exc).__name__}: {exc}"[:500],
        status=status if isinstance(status, int) else None,
    )


class FallbackModel:
    """Ask `models` in order until one answers (see the module docstring).

    `should_fall_back(exc)` decides which failures pass the turn on (default:
    `not_callers_fault`). When every model fails, the last failure is raised as a `ModelError`
    naming each model's failure.
    """

    def __init__(
        self,
        models: Sequence[Model],
        *,
        should_fall_back: Callable[[BaseException], bool] = not_callers_fault,
    ) -> None:
        if not models:
            raise ValueError("FallbackModel needs at least one model")
        self.models = list(models)
        self.should_fall_back = should_fall_back

    @property
    def name(self) -> str:
        return self.models[0].name

    @property
    def max_tokens(self) -> int | None:
        own = getattr(self.models[0], "max_tokens", None)
        return own if isinstance(own, int) else None

    async def request(self, request: ModelRequest) -> ModelResponse:
        notes: list[Fallback] = []
        for i, model in enumerate(self.models):
            try:
                response = await model.request(request)
            except Exception as exc:
                if i == len(self.models) - 1 or not self.should_fall_back(exc):
                    if notes:
                        raise self._exhausted(exc, notes) from exc
                    raise
                notes.append(_note(model, exc))
                continue
            return _answered_by(response, model, notes)
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Streams from the first model that starts answering. A model that fails before its
        first event passes the turn on; once events were sent, a failure is raised (the caller
        already showed part of that answer)."""
        notes: list[Fallback] = []
        for i, model in enumerate(self.models):
            started = False
            try:
                async for ev in _events(model, request):
                    started = True
                    if hasattr(ev, "response"):
                        _answered_by(ev.response, model, notes)
                    yield ev
                return
            except Exception as exc:
                if started or i == len(self.models) - 1 or not self.should_fall_back(exc):
                    if notes and not started:
                        raise self._exhausted(exc, notes) from exc
                    raise
                notes.append(_note(model, exc))

    def _exhausted(self, exc: BaseException, notes: list[Fallback]) -> ModelError:
        tried = "; ".join(f"{n.model}: {n.error}" for n in notes)
        return ModelError(
            f"every model failed: {tried}; last: {type(exc).__name__}: {exc}",
            status=getattr(exc, "status", None),
            retryable=not_callers_fault(exc),
        )


async def _events(model: Model, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
    stream = getattr(model, "stream", None)
    if stream is None:
        from callgate.models import ResponseFinished

        yield ResponseFinished(await model.request(request))
        return
    async for ev in stream(request):
        yield ev


def _answered_by(response: ModelResponse, model: Model, notes: list[Fallback]) -> ModelResponse:
    if not response.model:
        response.model = model.name
    response.fallbacks = [*notes, *response.fallbacks]
    return response


class SplitModel:
    """A small model for tool-calling turns, a larger one for the answer (module docstring).

    `answer_tools`: calls that are themselves an answer (the structured-output tool), so a turn
    of only those goes to the large model too.
    """

    def __init__(
        self,
        tools: Model,
        answer: Model,
        *,
        answer_tools: Collection[str] = ("final_result",),
    ) -> None:
        self.tools_model = tools
        self.answer_model = answer
        self.answer_tools = frozenset(answer_tools)

    @property
    def name(self) -> str:
        return self.tools_model.name

    async def request(self, request: ModelRequest) -> ModelResponse:
        if request.tool_choice == "none" or not request.tools:
            return _answered_by(await self.answer_model.request(request), self.answer_model, [])
        first = await self.tools_model.request(request)
        calls = first.tool_calls
        if calls and not all(c.name in self.answer_tools for c in calls):
            return _answered_by(first, self.tools_model, [])
        final = await self.answer_model.request(request)
        final.usage = first.usage + final.usage
        note = Fallback(self.tools_model.name, "split: answer turn handed to the answer model")
        return _answered_by(final, self.answer_model, [note])


__all__ = ["FallbackModel", "SplitModel", "not_callers_fault"]
