"""Durable human approval: a call the policy marks "approve" runs only after a person said yes,
and then exactly once (at most once, if the process dies while it runs).

How a request moves (every arrow is one conditional UPDATE in the store, so two processes can
never both win it):

    pending ──approve──▶ approved ──claim──▶ executing ──complete──▶ done
       │                    │                    │
       ├──deny──▶ denied    └─(ttl)─▶ expired    └─(process died)─▶ interrupted
       └─(ttl)─▶ expired

- A request is bound to one call: the run id, the call id, and a hash of the tool name, version
  and the *real* canonical arguments. The person sees the arguments masked (sensitive
  parameters, secret-looking keys and values), but approves exactly the hashed ones: a call with
  any other argument, call id or run gets a request of its own and never rides on this approval.
- `check` is what the gate calls. No request yet: one is created and the run pauses
  (`ApprovalRequired`). Approved: the call is claimed (approved → executing) and runs. Denied or
  expired: the model is told so (`ToolDenied`) and is asked to check with the user.
- Already executing, done or interrupted: the call never runs again. A done call is refused with
  its recorded outcome (`ToolDenied`, code ``approval_done``) so a resumed run learns what
  happened instead of doing it twice.
- Crash while executing: the row stays ``executing``; nobody knows whether the side effect
  happened. When the owning process is known to be gone (same host, its pid no longer alive, or
  the same pid reused by a restarted process) the request is reported ``interrupted`` — by
  `Approvals.recover()` at start-up, or lazily by `check`. An interrupted call is never re-run
  automatically; the model is told to check the effect before asking again.
- Approving twice is harmless (the second answer returns the request unchanged); a different
  verdict on a decided request, or any verdict on an expired one, is an error.

Stores are deliberately dumb (insert, get, find, list, conditional transition): the rules above
live here, once, for every backend (`callgate.approvals.stores`). The request itself, its
statuses and errors are in `callgate.approvals.model`; the command line (``callgate approvals
...``) is `callgate.approvals.cli`, which the library never imports.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

from callgate.approvals.model import (
    STATUSES,
    ApprovalConflictError,
    ApprovalError,
    ApprovalExpiredError,
    ApprovalNotFoundError,
    ApprovalRequest,
    ApprovalStore,
    Status,
    args_hash,
    format_time,
    mask_arguments,
    owner_is_dead,
    process_owner,
)
from callgate.approvals.stores.memory import MemoryApprovalStore
from callgate.context import RunContext
from callgate.errors import ApprovalRequired, ToolDenied
from callgate.gate.protocols import Invocation, PolicyDecision
from callgate.messages import ToolResult
from callgate.redaction import redact_text

__all__ = ["Approvals", "CallbackApprover", "build_request"]

_MAX_COMMENT: Final = 2000
_MAX_SUMMARY: Final = 500


# --- the approver ----------------------------------------------------------------------------

Clock = Callable[[], float]


def _check_text(value: str | None, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApprovalError(f"{what} must be a string")
    if len(value) > limit:
        raise ApprovalError(f"{what} is longer than {limit} characters")
    return value


def build_request(
    inv: Invocation,
    decision: PolicyDecision,
    *,
    now: float,
    ttl_s: float,
    digest: str | None = None,
) -> ApprovalRequest:
    """A new request for `inv`. `digest` is its `args_hash` when the caller already computed
    it (hashing canonical arguments is the costliest part, and `Approvals` needs the hash
    first to look for an existing request)."""
    ctx: RunContext = inv.ctx
    tool = inv.tool
    return ApprovalRequest(
        id=f"apr_{uuid.uuid4().hex[:20]}",
        run_id=ctx.run_id,
        conversation_id=ctx.conversation_id,
        call_id=inv.call.id,
        tool=tool.name,
        version=tool.version,
        arguments=mask_arguments(tool, inv.args),
        args_hash=digest if digest is not None else args_hash(tool.name, tool.version, inv.args),
        rule=decision.rule,
        reason=decision.reason,
        requested_by=ctx.user_id,
        tenant=ctx.tenant,
        created_at=now,
        expires_at=now + ttl_s,
    )


def _summarise(result: ToolResult) -> str:
    text = redact_text(result.content)
    if len(text) > _MAX_SUMMARY:
        text = text[: _MAX_SUMMARY - 1] + "…"
    return f"error ({result.error_kind}): {text}" if result.is_error else text


class Approvals:
    """The durable approver: plug it into the gate (``Gate(..., approver=Approvals(store))``)
    and decide requests from anywhere that reaches the same store (Python, the CLI, a web page).

    - `ttl_s`: how long a request waits for a verdict, and how long an approval stays usable
      after it was given (a run resumed later than that has to ask again).
    - `allow_self_approval`: when False, the user who made the request cannot approve it.
    - `clock`: seconds since the epoch (injectable for tests).
    """

    def __init__(
        self,
        store: ApprovalStore,
        *,
        ttl_s: float = 3600.0,
        allow_self_approval: bool = True,
        clock: Clock = time.time,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.store = store
        self.ttl_s = ttl_s
        self.allow_self_approval = allow_self_approval
        self.clock = clock
        self.owner = process_owner()
        # database stores block on I/O: keep them off the event loop
        self._offload = not isinstance(store, MemoryApprovalStore)

    # the gate side -------------------------------------------------------------------------

    async def check(self, inv: Invocation, decision: PolicyDecision) -> None:
        if self._offload:
            await asyncio.to_thread(self._check, inv, decision)
        else:
            self._check(inv, decision)

    async def complete(self, inv: Invocation, result: ToolResult) -> None:
        """Record that the claimed call ran, with its result (executing → done)."""
        if self._offload:
            await asyncio.to_thread(self._complete, inv, result)
        else:
            self._complete(inv, result)

    async def settle(self, inv: Invocation, result: ToolResult | None, reason: str) -> None:
        """Settle the claim `check` made, whatever stage ended the call (the gate calls this
        once per approved call): done when the tool ran; back to "approved", with "not run" and
        the reason, when a later stage refused it before it started (so a retry runs it once);
        interrupted when it started and never finished (its effect is unknown)."""
        if inv.started and result is not None:
            await self.complete(inv, result)
        elif self._offload:
            await asyncio.to_thread(self._release, inv, reason)
        else:
            self._release(inv, reason)

    def _check(self, inv: Invocation, decision: PolicyDecision) -> None:
        now = self.clock()
        digest = args_hash(inv.tool.name, inv.tool.version, inv.args)
        claimed_id = inv.approval_id
        if claimed_id is not None:
            req = self._bound(str(claimed_id), inv, digest)
        else:
            found = self.store.find(inv.ctx.run_id, inv.call.id, digest)
            if found is None:
                # built only here, for a call no request exists for, and always stored: a
                # call that is already approved (or refused) never pays for a request
                fresh = build_request(inv, decision, now=now, ttl_s=self.ttl_s, digest=digest)
                found = self.store.add(fresh)
            req = found
        for _ in range(3):  # re-read at most a couple of times if another process moves it
            nxt = self._step(req, inv, now)
            if nxt is None:
                inv.approval_id = req.id
                return
            req = nxt
        raise ToolDenied(
            "The approval for this call keeps changing state; ask the user to check it.",
            rule=req.rule,
            code="approval_conflict",
        )

    def _bound(self, approval_id: str, inv: Invocation, digest: str) -> ApprovalRequest:
        """An approval id handed in with the call must belong to exactly this call."""
        req = self.store.get(approval_id)
        if (
            req is None
            or req.run_id != inv.ctx.run_id
            or req.call_id != inv.call.id
            or req.tool != inv.tool.name
            or req.args_hash != digest
        ):
            raise ToolDenied(
                "The approval presented with this call was given for a different call or "
                "different arguments; it does not authorise this one. Ask the user again.",
                code="approval_mismatch",
            )
        return req

    def _step(self, req: ApprovalRequest, inv: Invocation, now: float) -> ApprovalRequest | None:
        """Act on the request's status: return None to run the call, raise to stop it, or
        return a fresher copy of the request to look at again."""
        status = req.status
        if status == "pending":
            if now >= req.expires_at:
                self.store.transition(req.id, ("pending",), "expired")
                return self._reload(req)
            raise ApprovalRequired(req.id, _for_the_model(req), req)
        if status == "approved":
            claimed = self.store.transition(
                req.id,
                ("approved",),
                "executing",
                {"claimed_by": self.owner, "claimed_at": now},
                unexpired_at=now,
            )
            if claimed is not None:
                return None
            if now >= req.expires_at:
                self.store.transition(req.id, ("approved",), "expired")
            return self._reload(req)
        if status == "executing" and owner_is_dead(req.claimed_by):
            self.store.transition(
                req.id, ("executing",), "interrupted", {"finished_at": self.clock()}
            )
            return self._reload(req)
        raise _refusal(req)

    def _reload(self, req: ApprovalRequest) -> ApprovalRequest:
        fresh = self.store.get(req.id)
        if fresh is None:
            raise ToolDenied(
                "The approval request disappeared; ask the user again.", code="approval_missing"
            )
        return fresh

    def _complete(self, inv: Invocation, result: ToolResult) -> None:
        if inv.approval_id is None:
            return
        self.store.transition(
            inv.approval_id,
            ("executing", "interrupted"),  # a late finish still records the real outcome
            "done",
            {"finished_at": self.clock(), "result_summary": _summarise(result)},
        )

    def _release(self, inv: Invocation, reason: str) -> None:
        if inv.approval_id is None:
            return
        note = redact_text(f"not run: {reason}" if reason else "not run")[:_MAX_SUMMARY]
        if inv.started:
            changes = {"finished_at": self.clock(), "result_summary": note}
            self.store.transition(inv.approval_id, ("executing",), "interrupted", changes)
            return
        released = {"claimed_by": None, "claimed_at": None, "result_summary": note}
        self.store.transition(inv.approval_id, ("executing",), "approved", released)

    # the people side -----------------------------------------------------------------------

    def get(self, approval_id: str) -> ApprovalRequest:
        req = self.store.get(approval_id)
        if req is None:
            raise ApprovalNotFoundError(f"no approval request with id {approval_id!r}")
        return self._expire_if_due(req)

    def list(self, status: str | None = None, limit: int = 100) -> builtins.list[ApprovalRequest]:
        """Requests, newest first; pending requests past their time are reported expired."""
        if status is not None and status not in STATUSES:
            raise ApprovalError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        if status in (None, "pending", "expired"):
            self.expire_due()
        return self.store.list(status, limit)

    def expire_due(self) -> int:
        """Mark every pending request past its time as expired. Returns how many."""
        now = self.clock()
        n = 0
        for req in self.store.list("pending", limit=10_000):
            if now >= req.expires_at and self.store.transition(req.id, ("pending",), "expired"):
                n += 1
        return n

    def approve(
        self, approval_id: str, *, by: str | None = None, comment: str | None = None
    ) -> ApprovalRequest:
        """Approve a pending request. Approving an approved (or already run) request again
        returns it unchanged."""
        return self._decide(approval_id, "approved", by, comment)

    def deny(
        self, approval_id: str, *, by: str | None = None, comment: str | None = None
    ) -> ApprovalRequest:
        """Deny a pending request; the model is told, with the comment."""
        return self._decide(approval_id, "denied", by, comment)

    def _decide(
        self, approval_id: str, verdict: Status, by: str | None, comment: str | None
    ) -> ApprovalRequest:
        by = _check_text(by, "'by'", 200)
        comment = _check_text(comment, "comment", _MAX_COMMENT)
        req = self.get(approval_id)
        self_approval = by is None or (req.requested_by is not None and by == req.requested_by)
        if verdict == "approved" and not self.allow_self_approval and self_approval:
            raise ApprovalError(
                f"approval {approval_id} must be approved by someone other than "
                f"the requester ({req.requested_by or 'anonymous'}); pass by=..."
            )
        if req.status == "pending":
            now = self.clock()
            changes: dict[str, Any] = {"decided_by": by, "decided_at": now, "comment": comment}
            if verdict == "approved":
                changes["expires_at"] = now + self.ttl_s
            done = self.store.transition(
                approval_id, ("pending",), verdict, changes, unexpired_at=now
            )
            if done is not None:
                return done
            req = self.get(approval_id)  # someone else decided, or it just expired
        if req.status == "expired":
            raise ApprovalExpiredError(
                f"approval {approval_id} expired at {format_time(req.expires_at)}; "
                "the user has to ask again"
            )
        already_approved = ("approved", "executing", "done", "interrupted")
        if (verdict == "approved" and req.status in already_approved) or (
            verdict == "denied" and req.status == "denied"
        ):
            return req
        by_whom = f" by {req.decided_by}" if req.decided_by else ""
        raise ApprovalConflictError(
            f"approval {approval_id} was already {req.status}{by_whom}; it cannot be {verdict} now"
        )

    def _expire_if_due(self, req: ApprovalRequest) -> ApprovalRequest:
        if req.status == "pending" and self.clock() >= req.expires_at:
            moved = self.store.transition(req.id, ("pending",), "expired")
            return moved or self.store.get(req.id) or req
        return req

    def recover(
        self, *, all_owners: bool = False, stale_after_s: float | None = None
    ) -> builtins.list[ApprovalRequest]:
        """Report calls whose process died while executing them as ``interrupted``.

        By default only calls owned by a process on this host that is gone are touched (safe to
        run at every start-up, even with other workers alive). `stale_after_s` also takes calls
        claimed longer ago than that; `all_owners` takes every executing call (use it only when
        no worker is running). Interrupted calls are never re-run."""
        now = self.clock()
        out: builtins.list[ApprovalRequest] = []
        for req in self.store.list("executing", limit=10_000):
            stale = (
                stale_after_s is not None
                and req.claimed_at is not None
                and now - req.claimed_at >= stale_after_s
            )
            if all_owners or stale or owner_is_dead(req.claimed_by):
                moved = self.store.transition(
                    req.id, ("executing",), "interrupted", {"finished_at": now}
                )
                if moved is not None:
                    out.append(moved)
        return out


def _for_the_model(req: ApprovalRequest) -> str:
    """What a paused call tells the model: what will run (arguments masked, on one line) and
    why it waits. Shorter than `ApprovalRequest.describe`, which is written for the person."""
    args = json.dumps(req.arguments, ensure_ascii=False, sort_keys=True, default=str)
    if len(args) > 300:
        args = args[:299] + "…"
    why = req.reason or f"rule {req.rule}"
    return f"If approved, `{req.tool}` runs once with {args}. Why it needs approval: {why}."


def _refusal(req: ApprovalRequest) -> ToolDenied:
    """Why a request in a status that never runs the call refuses it, for the model: what
    happened, and one sentence of advice."""
    status = req.status
    if status == "denied":
        who = req.decided_by or "A person"
        note = f' (comment: "{req.comment}")' if req.comment else ""
        text = f"{who} denied this call{note}. Tell the user instead of trying it again."
    elif status == "expired":
        text = "The approval expired before it was used; ask the user again."
    elif status == "executing":
        text = (
            "This approved call is already being carried out and will not run twice; wait for "
            "its result."
        )
    elif status == "interrupted":
        text = (
            "This approved call started but was interrupted, so its effect is unknown; check "
            "whether it took effect before asking the user to approve it again."
        )
    elif status == "done":
        summary = req.result_summary or "(no output)"
        text = (
            "This approved call was already carried out and will not run twice. Its result "
            f"was: {summary}"
        )
    else:
        return ToolDenied(f"unknown approval status {status!r}", code="approval_conflict")
    return ToolDenied(text, rule=req.rule, code=f"approval_{_CODES[status]}")


_CODES: Final = {
    "denied": "denied",
    "expired": "expired",
    "executing": "in_progress",
    "interrupted": "interrupted",
    "done": "done",
}


# --- inline approval -------------------------------------------------------------------------

Verdict = bool | tuple[bool, str | None]
AskFn = Callable[[ApprovalRequest], Verdict | Awaitable[Verdict]]


class CallbackApprover:
    """Ask a person right now (a terminal prompt, a chat button) instead of pausing the run.

    `fn(request)` returns True / False or ``(bool, comment)``, sync or async. Sync functions run
    in a worker thread so a blocking prompt does not stall other calls; prompts are asked one at
    a time. Nothing is persisted: use `Approvals` when a run must survive a restart.
    """

    def __init__(self, fn: AskFn, *, by: str | None = None) -> None:
        self.fn = fn
        self.by = by
        self._lock = asyncio.Lock()

    async def check(self, inv: Invocation, decision: PolicyDecision) -> None:
        req = build_request(inv, decision, now=time.time(), ttl_s=3600.0)
        async with self._lock:
            try:
                if inspect.iscoroutinefunction(self.fn):
                    answer: Any = await self.fn(req)
                else:
                    answer = await asyncio.to_thread(self.fn, req)
                    if inspect.isawaitable(answer):
                        answer = await answer
            except Exception as exc:  # no answer is a no
                raise ToolDenied(
                    "No approval could be obtained for this call; it did not run.",
                    rule=decision.rule,
                    detail=repr(exc),
                    code="approval_failed",
                ) from exc
        ok, comment = _verdict(answer)
        if ok:
            inv.approval_id = req.id
            inv.approved_by = self.by
            return
        note = f' (comment: "{comment}")' if comment else ""
        raise ToolDenied(
            f"The user denied this call{note}. Tell the user instead of trying it again.",
            rule=decision.rule,
            code="approval_denied",
        )


def _verdict(answer: Any) -> tuple[bool, str | None]:
    if isinstance(answer, bool):
        return answer, None
    if (
        isinstance(answer, tuple)
        and len(answer) == 2
        and isinstance(answer[0], bool)
        and (answer[1] is None or isinstance(answer[1], str))
    ):
        return answer[0], answer[1]
    raise ToolDenied(
        "The approval callback gave no clear answer; the call did not run.",
        detail=f"expected bool or (bool, comment), got {answer!r}",
        code="approval_failed",
    )
