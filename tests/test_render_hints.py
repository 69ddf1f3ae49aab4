"""A wrong or missing value is answered with the parameter's own description, which often
holds the fix (a format, an example)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from callgate import Gate, RunContext, tool
from callgate.testing import call


@tool(read_only=True)
def get_property(
    property_id: Annotated[str, Field(pattern=r"^P-\d{3}$")], full: bool = False
) -> str:
    """Show one property.

    Args:
        property_id: The property's id, e.g. "P-101".
        full: Include the full history.
    """
    return property_id


async def test_wrong_value_carries_the_parameter_description() -> None:
    r = await Gate([get_property]).execute(
        call("get_property", {"property_id": "101"}), RunContext()
    )
    assert r.error_kind == "correctable"
    line = next(x for x in r.content.splitlines() if x.startswith("- property_id"))
    assert 'got "101" (string)' in line
    assert '(property_id: The property\'s id, e.g. "P-101")' in line


async def test_missing_value_carries_the_parameter_description() -> None:
    r = await Gate([get_property]).execute(call("get_property", {"full": True}), RunContext())
    assert (
        '- property_id: required, but missing (property_id: The property\'s id, e.g. "P-101").'
        in r.content
    )


async def test_unknown_parameter_lines_do_not_repeat_descriptions() -> None:
    r = await Gate([get_property]).execute(
        call("get_property", {"property_id": "P-101", "ful": True}), RunContext()
    )
    line = next(x for x in r.content.splitlines() if x.startswith("- ful"))
    assert "did you mean 'full'" in line and "Include the full history" not in line
