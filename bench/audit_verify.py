"""How much memory and time `callgate audit verify` takes on a large log.

    .venv/bin/python bench/audit_verify.py [N]          # default N = 100_000

Builds a SQLite audit log of N call records shaped like the ones the gate writes (written in bulk
through the store's own sealing and row mapping, so building it does not take minutes of
fsyncs), then verifies it in a fresh process and prints records/s and the process's peak
resident memory above what it used before the walk. Checkpoints every 100 records, as by
default, so the walk also merges them.
"""

from __future__ import annotations

import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from callgate.audit import GENESIS, AuditLog, NewRecord
from callgate.audit.record import make_checkpoint
from callgate.audit.stores._sql import checkpoint_insert_sql, checkpoint_row, entry_row, insert_sql


def build(path: Path, n: int) -> None:
    AuditLog.open(path).close()  # the schema
    conn = sqlite3.connect(path)
    prev = GENESIS
    rows, cps = [], []
    for i in range(1, n + 1):
        data = {
            "call_id": f"call_{i}",
            "arguments": {"order_id": i, "note": "***", "card": "****1111"},
            "result_summary": f"refunded order {i}: " + "x" * 200,
            "roles": ["support"],
            "request": "refund my order please",
            "rule": "default:other",
            "duration_s": 0.01,
        }
        who = (f"conv_{i // 10}", "run", "alice", "acme")
        e = NewRecord(1.7e9 + i, "call", *who, "refund", "allow", data).seal(i, prev)
        prev = e.hash
        rows.append(entry_row(e))
        if i % 100 == 0:
            cps.append(checkpoint_row(make_checkpoint(i, e.hash, 0.0, None)))
    with conn:
        conn.executemany(insert_sql("audit_log", "?"), rows)
        conn.executemany(checkpoint_insert_sql("audit_log_checkpoints", "?"), cps)
    conn.close()


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc (Linux), in KiB: VmRSS now, VmHWM its peak.
    (`ru_maxrss` would not do: Linux keeps it across exec, so a child reports its parent's.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(path: str) -> None:
    """Run in a fresh process: the peak RSS is this walk's alone."""
    log = AuditLog.open(path, must_exist=True)
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    report = log.verify()
    elapsed = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    log.close()
    print(
        json.dumps(
            {
                "ok": report.ok,
                "records": report.count,
                "checkpoints": report.checkpoints,
                "seconds": round(elapsed, 2),
                "records_per_s": round(report.count / elapsed),
                "rss_before_mib": round(before / 1024, 1),
                "peak_rss_mib": round(peak / 1024, 1),
                "rss_growth_mib": round(max(0, peak - before) / 1024, 1),
            }
        )
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        measure(sys.argv[2])
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        build(path, n)
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout)
        print(
            f"audit verify, {result['records']} records: {result['records_per_s']} records/s, "
            f"RSS {result['rss_before_mib']} MiB before the walk, peak {result['peak_rss_mib']} "
            f"MiB (+{result['rss_growth_mib']} MiB), {result['checkpoints']} checkpoints "
            f"matched, ok={result['ok']}"
        )


if __name__ == "__main__":
    main()
