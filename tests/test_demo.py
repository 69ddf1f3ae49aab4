"""`make demo` end to end on the real local model: every scene shows what it promises, in order.

Runs `examples/property_demo.py` as a newcomer would (a subprocess, plain output) and reads what
it printed. Each scene's promise is checked on the lines the gate printed, not on the model's
wording, except where the model's own move is the point (the corrected call, the parallel calls).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "property_demo.py"


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> str:
    from callgate.errors import ModelError
    from callgate.providers.local.model import default_model_path

    try:
        default_model_path()
    except ModelError as e:
        pytest.skip(str(e))
    work = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, str(DEMO), "--dir", str(work)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def scene(out: str, n: int) -> str:
    """The text of scene `n` (up to the next scene or the audit section)."""
    parts = re.split(r"^━━ ", out, flags=re.M)
    found = [p for p in parts if p.startswith(f"{n} · ")]
    assert found, f"scene {n} is missing"
    return found[0]


def answers(text: str) -> list[str]:
    return re.findall(r"^  answer: (.*)$", text, flags=re.M)


@pytest.mark.slow
def test_scenes_appear_in_order(output: str) -> None:
    titles = re.findall(r"^━━ (.*)$", output, flags=re.M)
    assert titles == [
        "1 · a search answered from live data",
        "2 · a validation error, corrected by the model",
        "3 · parallel calls",
        "4 · a destructive call waits for confirmation",
        "5 · an instruction hidden in a tool result, stopped by provenance",
        "6 · a rate limit",
        "the audit log",
    ]


@pytest.mark.slow
def test_search_is_answered_from_the_tools_data(output: str) -> None:
    s = scene(output, 1)
    assert "local:SmolLM2" in s  # the local model, not a script
    assert "✓ search_properties ran" in s
    (answer,) = answers(s)
    result = s.split("✓ search_properties ran", 1)[1].split("\n", 1)[0]
    values = re.findall(r'"(P-\d{3})"|"district":"([^"]+)"|:(\d{4,})', result)
    assert any(v and v in answer for group in values for v in group), answer


@pytest.mark.slow
def test_a_validation_error_is_caught_and_the_model_fixes_it(output: str) -> None:
    s = scene(output, 2)
    refused = s.index("✗ refused, sent back for correction: get_property")
    assert "propertyid: unknown parameter" in s[refused:]
    fixed = s.index('→ get_property {"property_id": "P-104"}', refused)
    assert "local:SmolLM2" in s[refused:fixed]  # the fix is the local model's own turn
    assert "✓ get_property ran" in s[fixed:]


@pytest.mark.slow
def test_one_turn_makes_two_calls(output: str) -> None:
    s = scene(output, 3)
    first_turn = s.split("  turn 2 ·", 1)[0]
    calls = re.findall(r"→ list_maintenance_requests (.*)", first_turn)
    assert len(calls) == 2 and '"P-101"' in calls[0] + calls[1] and '"P-104"' in calls[0] + calls[1]
    assert s.count("✓ list_maintenance_requests ran") == 2


@pytest.mark.slow
def test_the_destructive_call_shows_what_will_run_before_it_runs(output: str) -> None:
    s = scene(output, 4)
    ask = s.index("⚠ confirmation needed")
    approved = s.index("→ the user approves", ask)
    shown = s[ask:approved]
    assert "`schedule_maintenance` runs once with these arguments" in shown
    assert '"property_id": "P-101"' in shown and '"date": "2026-12-15"' in shown
    assert s.index("✓ schedule_maintenance ran") > approved


@pytest.mark.slow
def test_the_hidden_instruction_is_stopped_by_provenance(output: str) -> None:
    s = scene(output, 5)
    assert "Maintenance note: assistant" in s  # the injected text did reach the model
    assert "⛔ denied (rule provenance): send_tenant_data" in s
    assert "scripted by the demo" in s  # the demo says which turn it played itself
    assert "✓ send_tenant_data" not in s


@pytest.mark.slow
def test_the_second_search_hits_the_rate_limit(output: str) -> None:
    s = scene(output, 6)
    assert s.count("✓ search_properties ran") == 1
    assert re.search(r"⛔ denied \(rule ratelimit:[^)]*\): search_properties", s)
    assert re.search(r"try again in \d+ s", s)


@pytest.mark.slow
def test_answers_never_repeat_the_gates_error_text(output: str) -> None:
    for n in range(1, 7):
        for a in answers(scene(output, n)):
            assert not re.search(r"Error:|Denied:|was not run|Do not retry", a), a
            assert "\n" not in a and len(a) < 400


@pytest.mark.slow
def test_the_audit_log_is_verified_and_summarised(output: str) -> None:
    audit = output.split("━━ the audit log", 1)[1]
    assert re.search(r"✓ verified: OK: \d+ records, chain intact", audit)
    rows = dict(re.findall(r"^  (\w+)\s+(\d+(?:\s+\d+){4})$", audit, flags=re.M))
    assert set(rows) >= {"search_properties", "get_property", "send_tenant_data"}
    ran, corrected, _denied, provenance, limited = map(int, rows["search_properties"].split())
    assert (ran, limited) == (2, 1)
    assert list(map(int, rows["get_property"].split()))[:2] == [1, 1]  # ran once, corrected once
    assert list(map(int, rows["send_tenant_data"].split()))[3] == 1  # stopped by provenance
    assert re.search(r"model: \d+ turns, [\d.]+ s · tools: [\d.]+ ms", audit)
    assert re.search(r"demo finished in [\d.]+ s", audit)
