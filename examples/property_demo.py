"""The property-management assistant: `make demo`.

Runs sample questions through the agent loop on the embedded local model (no API key, no
network) and prints every turn: the model's calls, validation errors and corrections, results,
approvals, timings and tokens. `--interactive` lets a person type questions and confirm or refuse
destructive calls. `--provider openai|anthropic|gemini` uses a cloud model when its key is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from property_app import TOOLS, Database

from callgate import Agent, Budgets, Gate, RunContext
from callgate.agent.loop import ModelTurn, RunFinished, ToolFinished, ToolStarted, ToolStatus
from callgate.approvals.service import ApprovalRequest, CallbackApprover
from callgate.models import Model

# (question, whether the person asking would confirm a destructive call during it). In the
# non-interactive run the demo answers confirmation requests the way that person would: a call
# nobody asked for is refused, and the model is told so.
QUESTIONS = [
    ("Find apartments in Lisbon under 400000 euros.", False),
    ("Show me the details of property P-104.", False),
    ("Which maintenance requests are open for property P-101?", False),
    ("Schedule a plumber at property P-101 on 2026-12-15 to fix the leaking kitchen tap.", True),
]

INSTRUCTIONS = (
    "You are the assistant of a property agency. Use the tools to look up properties and "
    "maintenance requests. Keep answers short and factual."
)

DIM, BOLD, RED, GREEN, YELLOW, RESET = (
    "\033[2m",
    "\033[1m",
    "\033[31m",
    "\033[32m",
    "\033[33m",
    "\033[0m",
)
if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
    DIM = BOLD = RED = GREEN = YELLOW = RESET = ""


def short(text: str, n: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def make_model(provider: str, model_name: str | None) -> Model:
    if provider == "local":
        from callgate.providers.local.model import LocalModel

        # short answers: a 135M model rambles when given room
        return LocalModel(max_tokens=160)
    if provider == "openai":
        from callgate.providers.openai.chat import OpenAIChatModel

        return OpenAIChatModel(model_name or "gpt-4o-mini")
    if provider == "anthropic":
        from callgate.providers.anthropic import AnthropicModel

        return AnthropicModel(model_name or "claude-3-5-haiku-latest")
    if provider == "gemini":
        from callgate.providers.gemini import GeminiModel

        return GeminiModel(model_name or "gemini-2.0-flash")
    raise SystemExit(f"unknown provider {provider!r}")


def default_provider() -> str:
    return "local"


class Consent:
    """What the scripted person would answer to a confirmation request right now."""

    would_confirm = False


def approval_prompt(interactive: bool, consent: Consent) -> Any:
    def ask(req: ApprovalRequest) -> tuple[bool, str]:
        print(f"  {YELLOW}⚠ confirmation needed{RESET}")
        print(textwrap.indent(req.describe(), "    "))
        if not interactive:
            if consent.would_confirm:
                print(f"  {YELLOW}→ answer: approved (the user asked for this){RESET}")
                return True, "the user asked for this"
            print(f"  {YELLOW}→ answer: refused (the user did not ask for this){RESET}")
            return False, "I did not ask for that"
        answer = input("    Approve? [y/N] ").strip().lower()
        ok = answer in ("y", "yes")
        print(f"  → {'approved' if ok else 'refused'}")
        return ok, "confirmed by the user" if ok else "refused by the user"

    return ask


async def ask_one(
    agent: Agent, db: Database, question: str, user: str, *, needs_data: bool = False
) -> None:
    print(f"\n{BOLD}━━ {question}{RESET}")
    ctx = RunContext(user_id=user, roles=frozenset({"agent"}), deps=db)
    t0 = time.perf_counter()
    # every sample question needs data: the first step must call a tool, later steps may answer
    first_step = (lambda turn: "required" if turn == 0 else None) if needs_data else None
    async for ev in agent.stream(question, ctx=ctx, step_tool_choice=first_step):
        if isinstance(ev, ModelTurn):
            u = ev.response.usage
            print(
                f"{DIM}turn {ev.turn + 1} · model {ev.duration_s:.2f} s · "
                f"{u.input_tokens}→{u.output_tokens} tokens{RESET}"
            )
            for c in ev.response.tool_calls:
                args = c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)
                print(f"  → {c.name} {short(args, 160)}")
            if ev.response.text and ev.response.tool_calls:
                print(f"  {DIM}(also said: {short(ev.response.text, 120)}){RESET}")
        elif isinstance(ev, ToolStarted):
            pass
        elif isinstance(ev, ToolStatus):
            print(f"  {DIM}… {ev.call.name} still running ({ev.elapsed_s:.1f} s){RESET}")
        elif isinstance(ev, ToolFinished):
            r = ev.result
            ms = r.duration_s * 1000
            if r.error_kind is None:
                print(f"  {GREEN}✓ {r.name}{RESET} {ms:.1f} ms: {short(r.content)}")
            else:
                colour = YELLOW if r.error_kind == "correctable" else RED
                label = {"correctable": "✗ needs correction", "denied": "⛔ denied"}.get(
                    r.error_kind, f"✗ {r.error_kind}"
                )
                print(f"  {colour}{label}{RESET} ({r.name}, {ms:.1f} ms):")
                print(textwrap.indent(r.content, "      "))
        elif isinstance(ev, RunFinished):
            res = ev.result
            u = res.usage
            answer = res.output.strip() or "(the model gave no text answer)"
            print(f"  {BOLD}answer:{RESET} {answer}")
            extra = f" · stopped: {res.reason}" if res.status == "stopped" else ""
            print(
                f"{DIM}{res.status} in {time.perf_counter() - t0:.2f} s · {res.turns} turns · "
                f"{res.tool_calls} calls · {u.input_tokens}+{u.output_tokens} tokens{extra}{RESET}"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", default=default_provider(), choices=["local", "openai", "anthropic", "gemini"]
    )
    parser.add_argument("--model", default=None, help="provider model name")
    parser.add_argument("--interactive", action="store_true", help="type your own questions")
    parser.add_argument("--db", default="var/property_demo.sqlite3", help="SQLite file")
    args = parser.parse_args()

    db = Database(Path(args.db))
    print(f"{BOLD}callgate property demo{RESET} · provider {args.provider} · database {args.db}")
    t0 = time.perf_counter()
    model = make_model(args.provider, args.model)
    print(f"{DIM}model {model.name} loaded in {time.perf_counter() - t0:.1f} s{RESET}")
    consent = Consent()
    approver = CallbackApprover(approval_prompt(args.interactive, consent), by="demo-user")
    gate = Gate(TOOLS, approver=approver)
    agent = Agent(
        model,
        gate,
        instructions=INSTRUCTIONS,
        budgets=Budgets(max_iterations=4, max_tool_calls=8),
        status_interval_s=2.0,
    )
    if args.interactive:
        print("Type a question (empty line to quit).")
        while True:
            try:
                q = (await asyncio.to_thread(input, "\n> ")).strip()
            except EOFError:
                break
            if not q:
                break
            await ask_one(agent, db, q, "demo-user")
        return
    for q, would_confirm in QUESTIONS:
        consent.would_confirm = would_confirm
        await ask_one(agent, db, q, "demo-user", needs_data=True)


if __name__ == "__main__":
    asyncio.run(main())
