#!/usr/bin/env python3
"""Load the benchmark data set into a running Roster tenant (used by bench/run.sh).

Creates, through the SCIM API only:
  * USERS users named user0 .. user{USERS-1}            -> OUT/user_ids.txt (line i = id of user{i})
  * SPARE users named spare0 .. spare{SPARE-1}          -> OUT/spare_ids.txt (in no group)
  * group "bench-big"   with every userN as a member    -> OUT/big_group_id.txt
    (filled by PATCH add of BATCH members per request)
  * group "bench-small" with user0 .. user9 as members  -> OUT/small_group_id.txt

With --users-only (the 1,000,000-user mode of bench/run.sh), creates only USERS users named
user{FIRST} .. user{FIRST+USERS-1} -> OUT/user_ids.txt, and no spare users or groups.

The bearer token comes from $BENCH_TOKEN. Only loopback URLs are accepted.
Prints one `LOAD key=value ...` line per phase for bench/run.sh to collect.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx2

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
RETRY_STATUSES = {429, 500, 502, 503, 504}
ATTEMPTS = 5


class LoadError(Exception):
    pass


def user_body(name: str, i: int) -> dict:
    return {
        "schemas": [USER_SCHEMA],
        "userName": name,
        "name": {"givenName": "Bench", "familyName": f"User{i}"},
        "displayName": f"Bench User {i}",
        "emails": [{"value": f"{name}@bench.example", "type": "work", "primary": True}],
        "active": True,
    }


async def request(client: httpx2.AsyncClient, method: str, url: str, **kw) -> httpx2.Response:
    """Send with bounded retries on transport errors and 429/5xx."""
    delay = 0.05
    for attempt in range(1, ATTEMPTS + 1):
        try:
            resp = await client.request(method, url, **kw)
        except httpx2.TransportError as exc:
            if attempt == ATTEMPTS:
                raise LoadError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        else:
            if resp.status_code not in RETRY_STATUSES or attempt == ATTEMPTS:
                return resp
        await asyncio.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


async def lookup_user_id(client: httpx2.AsyncClient, name: str) -> str:
    resp = await request(client, "GET", "/Users", params={"filter": f'userName eq "{name}"'})
    if resp.status_code == 200:
        found = resp.json().get("Resources") or []
        if len(found) == 1:
            return found[0]["id"]
    raise LoadError(f"user {name} exists (409) but the filter found it {resp.status_code}: {resp.text[:300]}")


async def create_users(client: httpx2.AsyncClient, prefix: str, count: int, concurrency: int,
                       first: int = 0) -> list[str]:
    ids: list[str | None] = [None] * count
    next_index = 0
    done = 0
    started = time.monotonic()
    report_every = max(count // 10, 1)

    async def worker() -> None:
        nonlocal next_index, done
        while True:
            i = next_index
            if i >= count:
                return
            next_index += 1
            name = f"{prefix}{first + i}"
            resp = await request(client, "POST", "/Users", json=user_body(name, first + i))
            if resp.status_code == 201:
                ids[i] = resp.json()["id"]
            elif resp.status_code == 409:  # a retried POST that had in fact succeeded
                ids[i] = await lookup_user_id(client, name)
            else:
                raise LoadError(f"POST /Users {name}: HTTP {resp.status_code}: {resp.text[:300]}")
            done += 1
            if done % report_every == 0:
                el = time.monotonic() - started
                print(f"  {prefix}: {done}/{count} in {el:.1f}s ({done / el:.0f}/s)", flush=True)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count) or 1)))
    elapsed = time.monotonic() - started
    print(f"LOAD phase=create_{prefix} count={count} seconds={elapsed:.2f} per_second={count / elapsed:.1f}", flush=True)
    return [i for i in ids if i is not None]


async def create_group(client: httpx2.AsyncClient, name: str, member_ids: list[str]) -> str:
    body = {"schemas": [GROUP_SCHEMA], "displayName": name,
            "members": [{"value": m} for m in member_ids]}
    resp = await request(client, "POST", "/Groups", json=body, params={"excludedAttributes": "members"})
    if resp.status_code != 201:
        raise LoadError(f"POST /Groups {name}: HTTP {resp.status_code}: {resp.text[:300]}")
    return resp.json()["id"]


async def fill_group(client: httpx2.AsyncClient, group_id: str, member_ids: list[str], batch: int) -> None:
    started = time.monotonic()
    batches = 0
    for start in range(0, len(member_ids), batch):
        chunk = member_ids[start:start + batch]
        body = {"schemas": [PATCH_SCHEMA],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": m} for m in chunk]}]}
        # excludedAttributes keeps a 200 answer from echoing up to 100k members.
        resp = await request(client, "PATCH", f"/Groups/{group_id}", json=body,
                             params={"excludedAttributes": "members"})
        if resp.status_code not in (200, 204):
            raise LoadError(f"PATCH /Groups/{group_id} (members {start}..): HTTP {resp.status_code}: {resp.text[:300]}")
        batches += 1
        if batches % 10 == 0:
            print(f"  big group: {start + len(chunk)}/{len(member_ids)} members", flush=True)
    elapsed = time.monotonic() - started
    print(f"LOAD phase=fill_big_group members={len(member_ids)} batches={batches} batch_size={batch} "
          f"seconds={elapsed:.2f} per_batch_ms={1000 * elapsed / max(batches, 1):.1f}", flush=True)


async def main_async(args: argparse.Namespace, token: str) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    limits = httpx2.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json",
               "Content-Type": "application/scim+json"}
    async with httpx2.AsyncClient(base_url=args.url.rstrip("/"), headers=headers, limits=limits,
                                  timeout=args.timeout, trust_env=False) as client:
        user_ids = await create_users(client, "user", args.users, args.concurrency, args.first)
        (out / "user_ids.txt").write_text("\n".join(user_ids) + "\n")
        if args.users_only:
            return
        spare_ids = await create_users(client, "spare", args.spare, args.concurrency)
        (out / "spare_ids.txt").write_text("\n".join(spare_ids) + "\n")

        big = await create_group(client, "bench-big", [])
        (out / "big_group_id.txt").write_text(big + "\n")
        await fill_group(client, big, user_ids, args.batch)

        small = await create_group(client, "bench-small", user_ids[:10])
        (out / "small_group_id.txt").write_text(small + "\n")
        print("LOAD phase=small_group members=10", flush=True)

        resp = await request(client, "GET", "/Users", params={"count": "0"})
        total = resp.json().get("totalResults") if resp.status_code == 200 else None
        print(f"LOAD phase=check users_total={total} expected={args.users + args.spare}", flush=True)
        if total != args.users + args.spare:
            print(f"warning: GET /Users?count=0 says totalResults={total}, expected {args.users + args.spare}",
                  file=sys.stderr, flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="SCIM base URL of the tenant (loopback only)")
    p.add_argument("--out", required=True, help="directory for the id files")
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--spare", type=int, default=1_000)
    p.add_argument("--batch", type=int, default=1_000, help="members per PATCH when filling the big group")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--users-only", action="store_true", help="create users only: no spare users, no groups")
    p.add_argument("--first", type=int, default=0, help="number of the first user (userFIRST)")
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()

    host = urlsplit(args.url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        print(f"error: refusing to load a non-loopback host {host!r}", file=sys.stderr)
        return 2
    token = os.environ.get("BENCH_TOKEN", "")
    if not token:
        print("error: set BENCH_TOKEN", file=sys.stderr)
        return 2
    try:
        asyncio.run(main_async(args, token))
    except LoadError as exc:
        print(f"error: load failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
