"""Redaction: secrets are masked by parameter, by key name and by value pattern; shape is kept."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from callgate.redaction import MASK, is_sensitive_key, redact, redact_text


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "userPassword",
        "db_passwd",
        "client_secret",
        "api_key",
        "apiKey",
        "X-Api-Key",
        "stripe_api_key",
        "access_token",
        "refreshToken",
        "token",
        "Authorization",
        "ssn",
        "card_number",
        "cardNumber",
        "cvv",
        "private_key",
        "aws_secret_access_key",
        "session_id",
        "cookie",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "max_tokens",
        "token_count",
        "user",
        "email",
        "subject",
        "keyboard",
        "monkey",
        "passage",
        "sort_key",
        "id",
        "description",
        "tokens",
    ],
)
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_structure_is_kept_and_input_untouched() -> None:
    args = {
        "user": "alice",
        "password": "hunter2",
        "profile": {"apiKey": "abc", "max_tokens": 5, "tags": ["a", "b"]},
        "items": [{"secret": "s1", "n": 1}, {"secret": None, "n": 2}],
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "pair": ("x", "token=abcdef123456"),
    }
    snapshot = json.dumps(args, default=str)
    out = redact(args)
    assert json.dumps(args, default=str) == snapshot  # pure: the input is not modified
    assert out == {
        "user": "alice",
        "password": MASK,
        "profile": {"apiKey": MASK, "max_tokens": 5, "tags": ["a", "b"]},
        "items": [{"secret": MASK, "n": 1}, {"secret": None, "n": 2}],
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "pair": ("x", "token=***"),
    }


def test_tool_sensitive_params_and_paths() -> None:
    args = {
        "note": "private words",
        "payment": {"card": "x", "holder": "Bob"},
        "lines": [{"memo": "m1"}, {"memo": "m2"}],
        "memo": "top-level memo stays",
    }
    out = redact(args, {"note", "payment.card", "lines.memo"})
    assert out["note"] == MASK
    assert out["payment"] == {"card": MASK, "holder": "Bob"}
    assert out["lines"] == [{"memo": MASK}, {"memo": MASK}]
    assert out["memo"] == "top-level memo stays"
    assert redact({"note": {"deep": [1, 2]}}, {"note"})["note"] == MASK


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("card 4111 1111 1111 1111 on file", "4111 1111 1111 1111", "****1111"),
        ("card 4111-1111-1111-1111", "4111-1111-1111-1111", "****1111"),
        ("amex 378282246310005", "378282246310005", "****0005"),
        ("Authorization: Bearer eyJhbGciOi.J9abc123.def456", "eyJhbGciOi", "Bearer ***"),
        ("Bearer abc123def456ghi789", "abc123def456ghi789", "Bearer ***"),
        ("key sk-proj-abcdefghijklmnop1234", "abcdefghijklmnop1234", "sk-***"),
        ("stripe sk_live_51HabcdefghijklmnOPQ", "51HabcdefghijklmnOPQ", "sk_live_***"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE", "aws *** here"),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghij", "ghp_***"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_abcdef", "eyJzdWIiOiIxIn0", "jwt ***"),
        ("login with password=hunter2 now", "hunter2", "password=***"),
        ('{"api_key": "k-999888777"}', "k-999888777", '"api_key": "***"'),
        ("https://bob:s3cr3t@db.example.com/x", "s3cr3t", "bob:***@db.example.com"),
        ("https://x.example/cb?token=abc123&y=1", "abc123", "token=***&y=1"),
        ("ssn 123-45-6789", "123-45-6789", "ssn ***"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Authorization: Basic ***"),
    ],
)
def test_value_patterns(text: str, secret: str, kept: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert kept in out


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123 shipped",  # not a card: fails Luhn / prefix
        "call 555-123-4567",
        "timestamp 1700000000000",
        "the basic plan costs $5",
        "bearer bonds are old",
        "max_tokens=200",
        "see https://example.com/path?q=1",
        "version 2.10.3-alpha",
        "tokens used: 1500",
        "ok",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact_text(text) == text


def test_raw_json_arguments() -> None:
    raw = '{"to": "a@b.example", "password": "pw123456", "nested": {"token": "t"}}'
    out = redact(raw)
    assert isinstance(out, str)
    assert json.loads(out) == {"to": "a@b.example", "password": MASK, "nested": {"token": MASK}}
    broken = '{"password": "pw123456", "x": '
    assert "pw123456" not in redact(broken)
    assert redact("plain text with sk-abcdefghijklmnop12") == "plain text with sk-***"


def test_models_and_dataclasses() -> None:
    class Payment(BaseModel):
        card_number: str
        holder: str

    @dataclasses.dataclass
    class Login:
        user: str
        password: str

    out = redact({"p": Payment(card_number="4111111111111111", holder="Bob"), "l": Login("a", "b")})
    assert out == {
        "p": {"card_number": MASK, "holder": "Bob"},
        "l": {"user": "a", "password": MASK},
    }
    assert redact({"blob": b"\x00\x01"}) == {"blob": "<2 bytes>"}


def test_patterns_can_be_disabled() -> None:
    assert redact({"note": "password=x1234567"}, patterns=()) == {"note": "password=x1234567"}
    assert redact({"pin_code": "1"}, keys=lambda k: k == "pin_code") == {"pin_code": MASK}


def _with_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


@given(st.integers(min_value=0, max_value=10**14 - 1), st.sampled_from(["4", "51", "37"]))
@settings(max_examples=200)
def test_property_luhn_valid_cards_never_leak(n: int, prefix: str) -> None:
    body = (prefix + f"{n:014d}")[:15]
    card = _with_check_digit(body)
    spaced = " ".join(card[i : i + 4] for i in range(0, 16, 4))
    for form in (card, spaced):
        out = redact({"note": f"pay with {form} today"})["note"]
        assert out == f"pay with ****{card[-4:]} today"
