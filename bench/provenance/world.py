"""The tools of the provenance evaluation: an office suite (email, files, calendar, payments,
chat, web), annotated for provenance the way an integrator would annotate them.

Read tools return whatever the scenario scripted for them (`RunContext.deps` holds the queue of
results), so one set of tools serves every scenario. Side-effecting tools only say "done".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callgate import ProvenanceSink, ProvenanceSource, RunContext, ScopeRules, tool

SCOPE_FILE = Path(__file__).with_name("scope.toml")


def _next(ctx: RunContext[Any], name: str) -> Any:
    """The scripted result of this read (a queue per tool name)."""
    queue: list[Any] = ctx.deps[name]
    return queue.pop(0)


# ----------------------------------------------------------------------------- read tools


@tool(read_only=True, provenance_source=ProvenanceSource(kind="mail"))
def search_emails(ctx: RunContext[Any], query: str) -> Any:
    """Search the user's mailbox."""
    return _next(ctx, "search_emails")


@tool(read_only=True, provenance_source=ProvenanceSource(kind="contact"))
def search_contacts(ctx: RunContext[Any], query: str) -> Any:
    """Look people up in the user's address book."""
    return _next(ctx, "search_contacts")


@tool(read_only=True, provenance_source=ProvenanceSource(kind="file"))
def search_files(ctx: RunContext[Any], query: str) -> Any:
    """Search the user's drive."""
    return _next(ctx, "search_files")


@tool(read_only=True)
def read_file(ctx: RunContext[Any], file_id: int) -> Any:
    """Read a file's content."""
    return _next(ctx, "read_file")


@tool(read_only=True, provenance_source=ProvenanceSource(kind="event"))
def list_events(ctx: RunContext[Any], day: str) -> Any:
    """The user's calendar for a day."""
    return _next(ctx, "list_events")


@tool(read_only=True, provenance_source=ProvenanceSource(kind="bill"))
def list_bills(ctx: RunContext[Any]) -> Any:
    """Open bills."""
    return _next(ctx, "list_bills")


@tool(read_only=True, provenance_source=ProvenanceSource(kind="transaction"))
def list_transactions(ctx: RunContext[Any]) -> Any:
    """Recent transactions on the user's account."""
    return _next(ctx, "list_transactions")


@tool(read_only=True, provenance_source=ProvenanceSource(kind="channel", trusted=True))
def list_channels(ctx: RunContext[Any]) -> Any:
    """The workspace's channels (the application's own list)."""
    return _next(ctx, "list_channels")


@tool(
    read_only=True,
    provenance_source=ProvenanceSource(
        kind="user", trusted_fields=frozenset({"id", "name", "email"})
    ),
)
def list_users(ctx: RunContext[Any]) -> Any:
    """The workspace directory; a user's status line is free text anyone can set."""
    return _next(ctx, "list_users")


@tool(read_only=True)
def read_channel(ctx: RunContext[Any], channel: str) -> Any:
    """Recent messages of a channel."""
    return _next(ctx, "read_channel")


@tool(read_only=True, open_world=True)
def fetch_page(ctx: RunContext[Any], url: str) -> Any:
    """Fetch a web page as text."""
    return _next(ctx, "fetch_page")


# ----------------------------------------------------------------------------- side effects

_EMAIL = ProvenanceSink("email")
_TEXT = ProvenanceSink(free_text=True)


@tool(provenance_sinks={"to": _EMAIL, "cc": _EMAIL, "attachments": "file", "body": _TEXT})
def send_email(
    to: list[str], subject: str, body: str, cc: list[str] | None = None,
    attachments: list[int] | None = None,
) -> str:  # fmt: skip
    """Send an email."""
    return "sent"


@tool(provenance_sinks={"file_id": "file", "email": _EMAIL})
def share_file(file_id: int, email: str) -> str:
    """Give someone access to a file."""
    return "shared"


@tool(destructive=True, provenance_sinks={"file_id": "file"})
def delete_file(file_id: int) -> str:
    """Delete a file."""
    return "deleted"


@tool(provenance_sinks={"participants": _EMAIL, "description": _TEXT})
def create_event(
    title: str, start: str, participants: list[str] | None = None, description: str = ""
) -> str:
    """Create a calendar event."""
    return "created"


@tool(destructive=True, provenance_sinks={"event_id": "event"})
def cancel_event(event_id: int) -> str:
    """Cancel a calendar event."""
    return "cancelled"


@tool(provenance_sinks={"iban": ProvenanceSink("account", action="deny"), "note": _TEXT})
def send_money(iban: str, amount: float, note: str = "") -> str:
    """Transfer money from the user's account."""
    return "sent"


@tool(provenance_sinks={"channel": "channel", "text": _TEXT})
def post_message(channel: str, text: str) -> str:
    """Post in a chat channel."""
    return "posted"


@tool(provenance_sinks={"user_id": "user", "text": _TEXT})
def send_dm(user_id: str, text: str) -> str:
    """Send a direct message to a workspace member."""
    return "sent"


@tool(provenance_sinks={"url": "url", "data": _TEXT})
def post_form(url: str, data: str) -> str:
    """Submit data to a web form."""
    return "submitted"


READS = [
    search_emails,
    search_contacts,
    search_files,
    read_file,
    list_events,
    list_bills,
    list_transactions,
    list_channels,
    list_users,
    read_channel,
    fetch_page,
]
WRITES = [
    send_email,
    share_file,
    delete_file,
    create_event,
    cancel_event,
    send_money,
    post_message,
    send_dm,
    post_form,
]
TOOLS = READS + WRITES


def scope_rules() -> ScopeRules:
    return ScopeRules.from_file(SCOPE_FILE)
