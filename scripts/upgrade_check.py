#!/usr/bin/env python3
"""Mixed-version check for scripts/upgrade.sh: two nodes of different releases on one database.

Usage: upgrade_check.py --old URL --new URL --tenant NAME --token TOKEN --admin-key KEY

Writes through each node and reads through the other: a user created on the old node is read,
filtered and PATCHed (with If-Match) on the new one, a group created on the new node with that
user as member is read on the old one, a PUT on the old node with the new node's ETag wins
over nothing (no lost update), a stale ETag is refused on both, and the tenant's event feed
reads the same gap-free seqs through both nodes. Stdlib only; loopback only; every request has
a timeout. Exits non-zero with the first difference found.
"""

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def call(method, url, token, body=None, headers=None):
    """(status, headers, parsed JSON or None) of one request."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Accept", "application/scim+json")
    if data is not None:
        req.add_header("Content-Type", "application/scim+json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with OPENER.open(req, timeout=30) as r:
            raw = r.read()
            return r.status, r.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return e.code, e.headers, parsed


def expect(what, got, want):
    if got != want:
        sys.exit(f"upgrade check: FAILED: {what}: got {got!r}, want {want!r}")
    print(f"ok: {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--admin-key", required=True)
    a = ap.parse_args()
    scim = {n: f"{u.rstrip('/')}/scim/v2/{a.tenant}" for n, u in (("old", a.old), ("new", a.new))}
    tok = a.token

    # A user created on the old node, read and found by filter on the new one.
    s, h, alice = call("POST", f"{scim['old']}/Users", tok, {
        "schemas": [USER], "userName": "alice.upgrade@example.com",
        "name": {"givenName": "Alice", "familyName": "Upgrade"},
        "emails": [{"value": "alice.upgrade@example.com", "primary": True, "type": "work"}],
        "active": True,
    })
    expect("create a user on the old node", s, 201)
    uid = alice["id"]
    s, h, got = call("GET", f"{scim['new']}/Users/{uid}", tok)
    expect("the new node reads it", (s, got["userName"]), (200, "alice.upgrade@example.com"))
    etag = h["ETag"]
    flt = urllib.parse.quote('userName eq "ALICE.UPGRADE@example.com"')
    s, _, got = call("GET", f"{scim['new']}/Users?filter={flt}", tok)
    expect("the new node finds it by userName, case-insensitively",
           (s, got["totalResults"]), (200, 1))

    # PATCH on the new node with If-Match; the old node sees it and refuses the stale ETag.
    s, h, got = call("PATCH", f"{scim['new']}/Users/{uid}", tok, {
        "schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}],
    }, {"If-Match": etag})
    expect("PATCH with If-Match on the new node", s, 200)
    new_etag = h["ETag"]
    s, _, err = call("PUT", f"{scim['old']}/Users/{uid}", tok, {
        "schemas": [USER], "userName": "alice.upgrade@example.com", "title": "Lost update",
    }, {"If-Match": etag})
    expect("the old node refuses a PUT with the stale ETag", s, 412)
    s, h, got = call("PUT", f"{scim['old']}/Users/{uid}", tok, {
        "schemas": [USER], "userName": "alice.upgrade@example.com", "title": "Manager",
        "active": True,
    }, {"If-Match": new_etag})
    expect("PUT with the current ETag on the old node", (s, got.get("title")), (200, "Manager"))
    s, _, got = call("GET", f"{scim['new']}/Users/{uid}", tok)
    expect("the new node reads the old node's PUT", got.get("title"), "Manager")

    # Duplicates are refused across versions.
    s, _, err = call("POST", f"{scim['new']}/Users", tok, {
        "schemas": [USER], "userName": "Alice.Upgrade@Example.com"})
    expect("a duplicate userName on the new node", (s, (err or {}).get("scimType")),
           (409, "uniqueness"))

    # A group made on the new node with the old node's user, read on the old node.
    s, _, grp = call("POST", f"{scim['new']}/Groups", tok, {
        "schemas": [GROUP], "displayName": "Upgraders", "members": [{"value": uid}]})
    expect("create a group on the new node", s, 201)
    s, _, got = call("GET", f"{scim['old']}/Groups/{grp['id']}", tok)
    expect("the old node reads its members",
           (s, [m["value"] for m in got.get("members", [])]), (200, [uid]))
    s, _, _ = call("PATCH", f"{scim['old']}/Groups/{grp['id']}", tok, {
        "schemas": [PATCH], "Operations": [
            {"op": "remove", "path": f'members[value eq "{uid}"]'}]})
    expect("remove the member on the old node", s in (200, 204), True)
    s, _, got = call("GET", f"{scim['new']}/Groups/{grp['id']}", tok)
    expect("the new node sees no member", got.get("members", []), [])

    # Deactivate on the old node, delete on the new one.
    s, _, got = call("PATCH", f"{scim['old']}/Users/{uid}", tok, {
        "schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]})
    expect("deactivate on the old node", (s, got.get("active")), (200, False))
    s, _, _ = call("DELETE", f"{scim['new']}/Users/{uid}", tok)
    expect("delete on the new node", s, 204)
    s, _, _ = call("GET", f"{scim['old']}/Users/{uid}", tok)
    expect("the old node no longer finds it", s, 404)

    # The same feed through both nodes: every seq once, in order, no gap.
    feeds = {}
    for node, base in (("old", a.old), ("new", a.new)):
        url = f"{base.rstrip('/')}/api/v1/tenants/{a.tenant}/events?after=0&limit=1000"
        s, _, got = call("GET", url, a.admin_key)
        expect(f"the event feed on the {node} node", s, 200)
        feeds[node] = [(e["seq"], e["id"], e["type"]) for e in got["events"]]
    seqs = [seq for seq, _, _ in feeds["new"]]
    expect("the feed's seqs are 1..N without a gap", seqs, list(range(1, len(seqs) + 1)))
    expect("both nodes serve the same feed", feeds["old"], feeds["new"])
    types = [t for _, _, t in feeds["new"]]
    for want in ("user.created", "user.updated", "group.created", "user.deactivated",
                 "user.deprovisioned"):
        if want not in types:
            sys.exit(f"upgrade check: FAILED: no {want} event in the feed: {types}")
    print(f"upgrade check: passed ({len(seqs)} events)")


if __name__ == "__main__":
    main()
