#!/usr/bin/env python3
"""A filter on a custom attribute, without and with its index (used by bench/run.sh).

Declares the custom schema `urn:ietf:params:scim:schemas:extension:bench:2.0:User` with a
string attribute `costCenter` on the tenant, gives every loaded user (OUT/user_ids.txt) a value
`cc-{i mod 100}` by PATCH, then times REQUESTS sequential
`GET /Users?filter=urn:…:costCenter eq "cc-N"&count=10` (N random) twice: with the attribute
not indexed (evaluated in memory over every user) and after declaring it `indexed: true` and
waiting for the online build (whose duration is reported). Checks that both answers agree.
Prints one line:

  RESULT scenario=custom_filter users=.. memory_p50_ms=.. memory_rps=.. build_s=..
         indexed_p50_ms=.. indexed_rps=.. speedup=..

The SCIM bearer token comes from $BENCH_TOKEN and the admin key from $BENCH_ADMIN_KEY; only
loopback URLs are accepted; stdlib only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
from urllib.parse import quote, urlsplit

URN = "urn:ietf:params:scim:schemas:extension:bench:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Client:
    def __init__(self, url: str, auth: str) -> None:
        u = urlsplit(url)
        if u.hostname not in ("127.0.0.1", "localhost"):
            sys.exit(f"error: {url} is not on loopback")
        self.host, self.port, self.base = u.hostname, u.port, u.path.rstrip("/")
        self.auth = auth
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.auth}", "Content-Type": "application/json"}
        data = None if body is None else json.dumps(body)
        for attempt in range(2):
            try:
                self.conn.request(method, self.base + path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else {})
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def declare(api: Client, tenant: str, indexed: bool) -> dict:
    body = {"schemas": [{"urn": URN, "resource": "User", "attributes": [
        {"name": "costCenter", "type": "string", "indexed": indexed}]}]}
    status, out = api.call("PUT", f"/tenants/{tenant}/custom-schemas", body)
    if status != 200:
        sys.exit(f"error: declaring the schema answered {status}: {out}")
    return out


def fill(url: str, token: str, ids: list[str], threads: int) -> None:
    def work(part: list[tuple[int, str]]) -> None:
        c = Client(url, token)
        for i, uid in part:
            body = {"schemas": [PATCH], "Operations": [
                {"op": "add", "path": f"{URN}:costCenter", "value": f"cc-{i % 100}"}]}
            status, out = c.call("PATCH", f"/Users/{uid}", body)
            if status != 200:
                sys.exit(f"error: PATCH answered {status}: {out}")
    items = list(enumerate(ids))
    parts = [items[k::threads] for k in range(threads)]
    ts = [threading.Thread(target=work, args=(p,)) for p in parts]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def measure(c: Client, requests: int, seed: int) -> tuple[list[float], list[list[str]]]:
    rnd = random.Random(seed)
    times, answers = [], []
    for _ in range(requests):
        n = rnd.randrange(100)
        f = quote(f'{URN}:costCenter eq "CC-{n}"')
        t0 = time.perf_counter()
        status, out = c.call("GET", f"/Users?filter={f}&count=10")
        times.append(time.perf_counter() - t0)
        if status != 200:
            sys.exit(f"error: the filter answered {status}: {out}")
        answers.append(sorted(r["id"] for r in out.get("Resources", [])) + [str(out["totalResults"])])
    return times, answers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="the tenant's SCIM base URL")
    ap.add_argument("--api", required=True, help="the admin API's base URL (…/api/v1)")
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--ids", required=True, help="OUT/user_ids.txt of bench/load.py")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()
    token, key = os.environ["BENCH_TOKEN"], os.environ["BENCH_ADMIN_KEY"]
    ids = [line.strip() for line in open(a.ids, encoding="ascii") if line.strip()]
    api, scim = Client(a.api, key), Client(a.url, token)

    declare(api, a.tenant, False)
    fill(a.url, token, ids, a.threads)
    mem, mem_answers = measure(scim, a.requests, 7)

    t0 = time.perf_counter()
    declare(api, a.tenant, True)
    while True:
        status, out = api.call("GET", f"/tenants/{a.tenant}/custom-schemas")
        states = [ix["state"] for ix in out.get("indexes", [])]
        if states == ["ready"]:
            break
        if "failed" in states or time.perf_counter() - t0 > 600:
            sys.exit(f"error: the index was not built: {out.get('indexes')}")
        time.sleep(0.05)
    build = time.perf_counter() - t0
    idx, idx_answers = measure(scim, a.requests, 7)
    if idx_answers != mem_answers:
        sys.exit("error: the indexed answers differ from the in-memory ones")

    def p50(xs: list[float]) -> float:
        return statistics.median(xs) * 1000

    print(
        f"RESULT scenario=custom_filter users={len(ids)} "
        f"memory_p50_ms={p50(mem):.2f} memory_rps={len(mem) / sum(mem):.1f} build_s={build:.2f} "
        f"indexed_p50_ms={p50(idx):.2f} indexed_rps={len(idx) / sum(idx):.1f} "
        f"speedup={p50(mem) / p50(idx):.1f}"
    )


if __name__ == "__main__":
    main()
