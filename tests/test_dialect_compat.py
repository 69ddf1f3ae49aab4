"""Schemas simplified for llama.cpp's schema-to-grammar converter (`callgate.dialects.compat`).

The guarantee under attack: a simplified pattern never accepts a string the original rejects
(the grammar may only narrow what the model can write), whatever cannot be translated is dropped
loudly, and nothing but the schema sent to the server changes.
"""

from __future__ import annotations

import json
import logging
import random
import re
import string
from typing import Any

import pytest

from callgate.dialects.compat import (
    UntranslatablePattern,
    simplify_pattern,
    simplify_schema,
)
from callgate.messages import Message
from callgate.models import ModelRequest
from callgate.providers.openai.chat import OpenAIChatModel
from callgate.tools.definition import ToolSpec
from tests.fakes.http import Reply
from tests.fakes.openai_server import FakeOpenAIServer, chat_completion

# the exact rewrites: each must be free of the escapes llama.cpp's grammar format rejects
REWRITES = [
    (r"^P-\d{3}$", "^P-[0-9]{3}$"),
    (r"P-\d", "^.*P-[0-9].*$"),
    (r"^(?:red|green)$", "^(red|green)$"),
    (r"cat|dog", "^.*(cat|dog).*$"),
    (r"^a+?b*?$", "^a+b*$"),
    (r"^\w+\.\w+$", "^[A-Za-z0-9_]+[\\x2E][A-Za-z0-9_]+$"),
    (r"^[\w.-]+$", "^[A-Za-z0-9_\\x2E\\x2D]+$"),
    (r"^\s?\"x\"$", "^[\\x20\\x09\\x0A\\x0D]?[\\x22]x[\\x22]$"),
    (r"^[A-Z]{2}\d{6}$", "^[A-Z]{2}[0-9]{6}$"),
    (r"^\$\d+(\.\d{2})?$", "^[\\x24][0-9]+([\\x2E][0-9]{2})?$"),
    (r"^[^a-z]{1,3}$", "^[^a-z]{1,3}$"),
    ("^\\u00e9t\\x41$", "^étA$"),
]

DROPS = [
    (r"^(?=.*\d)\w+$", "lookaround"),
    (r"^(?!admin)\w+$", "lookaround"),
    (r"^(a)\1$", "escape \\1"),
    (r"^\bword\b$", "escape \\b"),
    (r"^\D+$", "escape \\D"),
    (r"^[^\d]+$", "negated class"),
    (r"^a|b$", "anchors of their own"),
    (r"^a*+$", "possessive"),
    (r"^a$|^b$", "anchor"),
    (r"^[a-z", "not a valid regular expression"),
]

GRAMMAR_ESCAPES = set('xuUtnr\\"[]')


@pytest.mark.parametrize(("pattern", "expected"), REWRITES)
def test_rewrites(pattern: str, expected: str) -> None:
    out = simplify_pattern(pattern)
    assert out == expected
    assert out.startswith("^") and out.endswith("$")  # the converter asserts both
    assert "(?" not in out
    for m in re.finditer(r"\\(.)", out):  # only escapes the grammar format knows
        assert m.group(1) in GRAMMAR_ESCAPES, (out, m.group(0))


@pytest.mark.parametrize(("pattern", "reason"), DROPS)
def test_untranslatable_patterns_are_refused_with_a_reason(pattern: str, reason: str) -> None:
    with pytest.raises(UntranslatablePattern, match=re.escape(reason)):
        simplify_pattern(pattern)


def _candidates(rng: random.Random) -> list[str]:
    alphabet = string.ascii_letters[:6] + 'AZ019_.-$ \t"é٣x'  # ٣: a non-ASCII digit
    out = ["", "P-123", "P-12", "P-1234", "red", "cat", "a.b", "$12.50", "AB123456", "étA"]
    out += ["".join(rng.choices(alphabet, k=rng.randint(1, 9))) for _ in range(3000)]
    return out


@pytest.mark.parametrize(("pattern", "expected"), REWRITES)
def test_a_simplified_pattern_only_narrows(pattern: str, expected: str) -> None:
    """Whatever the grammar lets the model write must still pass the original pattern (the
    gate checks the original; a widening would only waste turns, but it would be a lie)."""
    simple, original = re.compile(simplify_pattern(pattern)), re.compile(pattern)
    strings = _candidates(random.Random(pattern))
    accepted = [s for s in strings if simple.fullmatch(s)]
    assert all(original.search(s) for s in accepted)
    # and it is not vacuous: the candidates the original accepts in plain ASCII still pass
    for s in strings:
        if s.isascii() and "\t" not in s and original.search(s) and "^" in pattern:
            assert simple.fullmatch(s), (pattern, s)


def _schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "property_id": {"type": "string", "pattern": r"^P-\d{3}$"},
            "password": {"type": "string", "pattern": r"^(?=.*\d).{8,}$"},
            "address": {
                "type": "object",
                "properties": {"zip": {"type": "string", "pattern": r"^\d{5}$"}},
            },
            "tags": {"type": "array", "items": {"type": "string", "pattern": r"^\w+$"}},
            "shape": {"const": {"pattern": r"\d"}, "default": {"pattern": r"(?=x)"}},
            "pattern": {"type": "string", "enum": [r"\d"]},
        },
        "$defs": {"Code": {"type": "string", "pattern": r"^(?<=x)$"}},
    }


def test_simplify_schema_walks_every_subschema_and_leaves_data_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    schema = _schema()
    before = json.dumps(schema, sort_keys=True)
    with caplog.at_level(logging.WARNING, logger="callgate.dialects"):
        out = simplify_schema(schema, "llama.cpp", tool="get_property")
    assert json.dumps(schema, sort_keys=True) == before  # the original is untouched
    props = out.schema["properties"]
    assert props["property_id"]["pattern"] == "^P-[0-9]{3}$"
    assert "pattern" not in props["password"] and props["password"]["type"] == "string"
    assert props["address"]["properties"]["zip"]["pattern"] == "^[0-9]{5}$"
    assert props["tags"]["items"]["pattern"] == "^[A-Za-z0-9_]+$"
    assert props["shape"] == {"const": {"pattern": r"\d"}, "default": {"pattern": r"(?=x)"}}
    assert props["pattern"] == {"type": "string", "enum": [r"\d"]}
    assert "pattern" not in out.schema["$defs"]["Code"]
    dropped = {c.parameter for c in out.changes if c.replacement is None}
    assert dropped == {"password", "#/$defs/Code"}
    rewritten = {c.parameter for c in out.changes if c.replacement is not None}
    assert rewritten == {"property_id", "address.zip", "tags[]"}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert any("'get_property'" in w and "'password'" in w for w in warnings)


def test_unknown_compat_is_refused() -> None:
    with pytest.raises(ValueError, match="schema_compat"):
        simplify_schema({}, "vllm", tool="t")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema_compat"):
        OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1", schema_compat="vllm")  # type: ignore[arg-type]


PROPERTY = ToolSpec(
    "get_property",
    "Look up a property by id.",
    {
        "type": "object",
        "properties": {
            "property_id": {"type": "string", "pattern": r"^P-\d{3}$"},
            "note": {"type": "string", "pattern": r"^(?!x).*$"},
        },
        "required": ["property_id"],
    },
)


async def test_only_the_wire_schema_changes_and_warnings_come_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeOpenAIServer() as server:
        for _ in range(3):
            server.enqueue(Reply.json_body(chat_completion(content="ok")))
        req = ModelRequest(messages=[Message.user("P-123?")], tools=[PROPERTY])
        compat = OpenAIChatModel("m", base_url=server.url, schema_compat="llama.cpp")
        plain = OpenAIChatModel("m", base_url=server.url)
        with caplog.at_level(logging.WARNING, logger="callgate.dialects"):
            await compat.request(req)
            await compat.request(req)
        await plain.request(req)
    sent = [r.json["tools"][0]["function"]["parameters"] for r in server.requests]
    assert sent[0] == sent[1]
    assert sent[0]["properties"] == {
        "property_id": {"type": "string", "pattern": "^P-[0-9]{3}$"},
        "note": {"type": "string"},
    }
    assert sent[2] == PROPERTY.parameters  # without the option the schema goes as written
    assert PROPERTY.parameters["properties"]["property_id"]["pattern"] == r"^P-\d{3}$"
    assert len(caplog.records) == 1 and "'note'" in caplog.records[0].getMessage()


async def test_a_failure_on_a_schema_with_a_pattern_points_at_schema_compat() -> None:
    from callgate.errors import ModelError
    from tests.fakes.openai_server import error_reply

    req = ModelRequest(messages=[Message.user("P-123?")], tools=[PROPERTY])
    with FakeOpenAIServer() as server:
        server.enqueue(error_reply(500, "grammar failed"), error_reply(500, "grammar failed"))
        plain = OpenAIChatModel("m", base_url=server.url, max_retries=0)
        with pytest.raises(ModelError, match="grammar failed.*schema_compat='llama.cpp'") as info:
            await plain.request(req)
        assert info.value.status == 500 and isinstance(info.value.__cause__, ModelError)
        compat = OpenAIChatModel("m", base_url=server.url, max_retries=0, schema_compat="llama.cpp")
        with pytest.raises(ModelError) as again:
            await compat.request(req)
        assert "schema_compat" not in str(again.value)  # already simplified: no false lead
        server.enqueue(error_reply(400, "bad key"))
        with pytest.raises(ModelError) as other:
            await plain.request(req)
        assert "schema_compat" not in str(other.value)  # a 400 has its own message
