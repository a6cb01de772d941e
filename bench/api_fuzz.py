"""The cloud API's error contract at volume: schemathesis cases (valid and invalid, plain and
box-signed) against every documented route of a real cloud over loopback; the target is zero
5xx answers over at least 5,000 cases. `make bench` runs it; `--per-operation N` scales it."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import report
from tests.peers.api_fuzz import run_fuzz
from tests.peers.cloud_thread import threaded_cloud


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-operation", type=int, default=400)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, threaded_cloud(Path(d)) as tc:
        t0 = time.perf_counter()
        res = run_fuzz(tc, args.per_operation)
        dt = time.perf_counter() - t0
    for e in res.server_errors[:20]:
        print("  5xx:", e)
    report(
        "cloud API error contract (schemathesis)",
        {
            "cases": res.cases,
            "operations": len(res.per_operation),
            "server_errors": len(res.server_errors),
            "status_counts": {str(k): v for k, v in sorted(res.statuses.items())},
            "cases_per_s": round(res.cases / dt, 1),
            "seconds": round(dt, 1),
        },
        ["target: 0 server errors over >= 5,000 cases"],
    )
    return 1 if res.server_errors or res.cases < 5000 else 0


if __name__ == "__main__":
    raise SystemExit(main())
