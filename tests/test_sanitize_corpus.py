"""The public sanitiser corpus: every attack string is refused, every ordinary value passes.

tests/corpus/sanitize/corpus.json holds each value with its sink, its expected verdict and, for
attacks, the class it belongs to. The corpus is data: add a value there (with its verdict) rather
than here. Judged with the default `SanitizeConfig` and through the `Sanitizer` middleware, so the
verdict is the one a tool would get.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from callgate.gate.middleware.sanitize import DEFAULT_DETECTORS, SanitizeConfig, Sanitizer

CORPUS = Path(__file__).parent / "corpus" / "sanitize" / "corpus.json"
ENTRIES: list[dict[str, Any]] = json.loads(CORPUS.read_text(encoding="utf-8"))["entries"]
SINKS = sorted(DEFAULT_DETECTORS)


def test_corpus_size_and_shape() -> None:
    verdicts = Counter(e["verdict"] for e in ENTRIES)
    assert verdicts["refuse"] >= 300 and verdicts["pass"] >= 300
    assert set(verdicts) == {"refuse", "pass"}
    per_sink = Counter((e["sink"], e["verdict"]) for e in ENTRIES)
    for sink in SINKS:  # every sink has both kinds, in numbers that mean something
        assert per_sink[(sink, "refuse")] >= 40 and per_sink[(sink, "pass")] >= 40, sink
    keys = [(e["sink"], e["value"]) for e in ENTRIES]
    assert len(keys) == len(set(keys)), "a value is listed twice for one sink"
    assert all(e.get("class") for e in ENTRIES if e["verdict"] == "refuse")


@pytest.mark.parametrize("sink", SINKS)
def test_corpus_verdicts(sink: str) -> None:
    sanitizer = Sanitizer(SanitizeConfig())
    wrong = []
    for e in ENTRIES:
        if e["sink"] != sink:
            continue
        findings = sanitizer.check({"v": sink}, {"v": e["value"]})
        refused = bool(findings)
        if refused != (e["verdict"] == "refuse"):
            wrong.append((e["value"], e["verdict"], [f.problem for f in findings]))
    assert wrong == []


def test_lists_of_values_are_each_judged() -> None:
    attack = next(e["value"] for e in ENTRIES if e["sink"] == "url" and e["verdict"] == "refuse")
    ordinary = [e["value"] for e in ENTRIES if e["sink"] == "url" and e["verdict"] == "pass"]
    sanitizer = Sanitizer()
    assert sanitizer.check({"v": "url"}, {"v": ordinary}) == []
    assert sanitizer.check({"v": "url"}, {"v": [*ordinary, attack]}) != []
    assert sanitizer.check({"v": "url"}, {"v": {"a": {"b": [attack]}}}) != []
