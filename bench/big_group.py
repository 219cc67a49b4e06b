#!/usr/bin/env python3
"""GET a large group with all its members, a few times in a row (used by bench/run.sh).

Sends REQUESTS sequential `GET {url}/Groups/{group}` (no excludedAttributes: every member is
in the answer), times each one (first byte and last byte), checks that the answer holds
at least MIN_MEMBERS members (the membership scenarios before it may leave a few spare users
in the group), and samples the server's resident memory (VmRSS in /proc/PID/status) every
few milliseconds from just before the first request to just after the last. Prints one line
for bench/run.sh:

  RESULT scenario=get_big_group requests=.. p50_ms=.. p99_ms=.. max_ms=.. ttfb_p50_ms=..
         bytes=.. members=.. rss_before_mib=.. rss_peak_mib=.. rss_after_mib=.. rss_growth_mib=..

rss_growth_mib is the peak during the requests minus the value before them. The bearer token
comes from $BENCH_TOKEN; only loopback URLs are accepted; stdlib only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit


def vm_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Keeps the highest VmRSS seen until stopped."""

    def __init__(self, pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak = vm_rss_kib(pid)
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, vm_rss_kib(self.pid))
            time.sleep(self.every)

    def stop(self) -> int:
        self.stop_flag.set()
        self.join(timeout=5)
        self.peak = max(self.peak, vm_rss_kib(self.pid))
        return self.peak


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="SCIM base URL of the tenant (loopback only)")
    p.add_argument("--group", required=True, help="the group's id")
    p.add_argument("--pid", type=int, required=True, help="the server's process id")
    p.add_argument("--min-members", type=int, required=True, help="members the group has at least")
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--name", default="get_big_group", help="scenario name on the RESULT line")
    args = p.parse_args()

    parts = urlsplit(args.url)
    host = parts.hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        print(f"error: refusing a non-loopback host {host!r}", file=sys.stderr)
        return 2
    token = os.environ.get("BENCH_TOKEN", "")
    if not token:
        print("error: set BENCH_TOKEN", file=sys.stderr)
        return 2
    path = f"{parts.path.rstrip('/')}/Groups/{args.group}"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}

    conn = http.client.HTTPConnection(host, parts.port or 80, timeout=args.timeout)
    totals, ttfbs = [], []
    non2xx = 0
    size = members = 0
    rss_before = vm_rss_kib(args.pid)
    sampler = RssSampler(args.pid, 0.005)
    sampler.start()
    try:
        for _ in range(max(args.requests, 1)):
            t0 = time.monotonic()
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            first = resp.read(1)
            t1 = time.monotonic()
            body = first + resp.read()
            t2 = time.monotonic()
            ttfbs.append(1000 * (t1 - t0))
            totals.append(1000 * (t2 - t0))
            size = len(body)
            if not 200 <= resp.status < 300:
                non2xx += 1
                print(f"warning: GET {path} answered {resp.status}: {body[:300]!r}", file=sys.stderr)
                continue
            members = len(json.loads(body).get("members") or [])
            if members < args.min_members:
                print(f"warning: the group has {members} members, expected {args.min_members} or more",
                      file=sys.stderr)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        print(f"error: GET {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        peak = sampler.stop()
        conn.close()
    rss_after = vm_rss_kib(args.pid)
    mib = lambda k: k / 1024  # noqa: E731
    print(
        f"RESULT scenario={args.name} requests={len(totals)} seconds={sum(totals) / 1000:.2f} "
        f"rps={1000 * len(totals) / max(sum(totals), 1e-9):.2f} "
        f"p50_ms={statistics.median(totals):.1f} p99_ms={percentile(totals, 99):.1f} max_ms={max(totals):.1f} "
        f"ttfb_p50_ms={statistics.median(ttfbs):.1f} bytes={size} members={members} non2xx={non2xx} "
        f"rss_before_mib={mib(rss_before):.1f} rss_peak_mib={mib(peak):.1f} rss_after_mib={mib(rss_after):.1f} "
        f"rss_growth_mib={mib(peak - rss_before):.1f}",
        flush=True,
    )
    return 0 if non2xx == 0 and members >= args.min_members else 1


if __name__ == "__main__":
    sys.exit(main())
