"""The structured-output and routing examples run as a reader would run them (a subprocess)
and print what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(name: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_structured_output_example() -> None:
    out = run("structured_output.py")
    assert "balance_eur: expected a number" in out  # the wrong-typed answer was sent back
    assert "turns: 3" in out
    assert "report: unit=4B balance_eur=120.0 urgent=False" in out
    assert "union answer: CannotAnswer" in out


def test_routing_example() -> None:
    out = run("routing.py")
    offered = [line for line in out.splitlines() if "offered" in line]
    assert len(offered) == 4 and all("offered 5 of 60" in line for line in offered)
    assert "answer: Done: list_ticket: done for 42" in out
    assert "answer: Done: export_rent: done for 42" in out
    assert "no tool named 'cancel_lease'; nothing was run" in out
    sent = [line for line in out.splitlines() if "tool text sent" in line]
    for line in sent:
        words = line.split()
        assert int(words[3]) * 5 < int(words[7])  # a fifth of the tool text, or less
    assert "audit log: 8 turns" in out
