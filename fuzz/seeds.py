#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (fuzz/corpus/<target>/) from inputs the tests already
use: the request bodies and filters of the recorded identity-provider cycles
(crates/roster/tests/fixtures/idp/*.json) and the filter texts of scim-proto's filter tests.

Run it again after those change:  python3 fuzz/seeds.py
The seeds are small on purpose: the fuzzer's own findings stay out of the repository
(scripts/fuzz.sh keeps them under artifacts/fuzz/)."""

import glob
import hashlib
import json
import os
import re
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
PER_TARGET = 48

# The fixtures' placeholders, filled with plausible values.
SAMPLES = {
    "userName": "bjensen@example.com",
    "email": "bjensen@example.com",
    "givenName": "Barbara",
    "familyName": "Jensen",
    "displayName": "Tour Guides",
    "externalId": "00u1a2b3c4",
    "id": "2819c223-7f76-453a-919d-413861904646",
}


def fill(text):
    def sub(m):
        key = m.group(1).split(".")[-1]
        return SAMPLES.get(key, "x-" + key)

    return re.sub(r"\{([A-Za-z_][A-Za-z_.]*)\}", sub, text)


def fixture_requests():
    for path in sorted(glob.glob(os.path.join(ROOT, "crates/roster/tests/fixtures/idp/*.json"))):
        with open(path, encoding="utf-8") as f:
            cycle = json.load(f)
        for step in cycle["steps"]:
            yield step["request"]


RUST_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def rust_string(lit):
    out, i = [], 0
    while i < len(lit):
        c = lit[i]
        if c == "\\" and i + 1 < len(lit):
            n = lit[i + 1]
            if n in RUST_ESCAPES:
                out.append(RUST_ESCAPES[n])
                i += 2
                continue
            m = re.match(r"u\{([0-9a-fA-F]+)\}", lit[i + 1 :])
            if m:
                out.append(chr(int(m.group(1), 16)))
                i += 2 + len(m.group(0)) - 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def test_filters():
    path = os.path.join(ROOT, "crates/scim-proto/src/filter/tests.rs")
    with open(path, encoding="utf-8") as f:
        src = f.read()
    ops = re.compile(r"\b(eq|ne|co|sw|ew|gt|ge|lt|le|pr)\b", re.IGNORECASE)
    for m in re.finditer(r'r#"(.*?)"#|"((?:[^"\\\n]|\\.)*)"', src):
        text = m.group(1) if m.group(1) is not None else rust_string(m.group(2))
        if ops.search(text) and len(text) < 200:
            yield text


# Bodies the fixtures lack: the RFC 7643 §8.2 full User and enterprise extension, a Group with
# members, URN-qualified keys, odd casing, string booleans, a single value for a list.
EXTRA_RESOURCES = [
    {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "userName": "bjensen",
        "externalId": "701984",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen",
                 "givenName": "Barbara", "middleName": "Jane", "honorificPrefix": "Ms."},
        "displayName": "Babs Jensen",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True},
                   {"value": "babs@jensen.org", "type": "home"}],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza",
                       "locality": "Hollywood", "region": "CA", "postalCode": "91608",
                       "country": "USA", "primary": True}],
        "active": True,
        "password": "t1meMa$heen",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984", "costCenter": "4130", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
        "meta": {"resourceType": "User", "version": "W/\"3694e05e9dff591\""},
    },
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Tour Guides",
     "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"},
                 {"value": "902c246b-6245-4190-8e05-00816be7344a"}]},
    {"SCHEMAS": ["urn:ietf:params:scim:schemas:core:2.0:user"], "USERNAME": "ALICE",
     "Active": "False", "Emails": {"Value": "alice@example.com", "Primary": "true"}},
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "carol",
     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
     "urn:ietf:params:scim:schemas:core:2.0:User:title": "Guide", "id": "ignored",
     "groups": [{"value": "x"}], "x-unknown": {"a": [1, 2.5e300, None]}},
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dave",
     "emails": [{"value": "a@x", "primary": True}, {"value": "b@x", "primary": True}]},
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "",
     "members": None},
    {"schemas": ["urn:scim:schemas:core:1.0"], "userName": "legacy",
     "urn:scim:schemas:extension:enterprise:1.0": {"department": "R&D"}},
]


def write(target, items):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    seen = []
    for data in items:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if data in seen:
            continue
        seen.append(data)
        if len(seen) == PER_TARGET:
            break
    for data in seen:
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seen)} seeds")


def body(req):
    return fill(json.dumps(req["body"], ensure_ascii=False)).encode("utf-8")


def main():
    reqs = list(fixture_requests())
    resources = [body(r) for r in reqs if r["method"] in ("POST", "PUT") and "body" in r]
    resources += [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in EXTRA_RESOURCES]
    patches = [body(r) for r in reqs if r["method"] == "PATCH" and "body" in r]
    fixture_filters = [
        fill(v) for r in reqs for k, v in r.get("query", []) if k == "filter"
    ]
    filters = fixture_filters + list(test_filters())
    write("resource_body", resources)
    write("patch_apply", patches)
    write("filter_parse", filters)
    # The normaliser takes all three: bodies of each request kind, and filter text.
    mixed = []
    for group in (patches, resources, fixture_filters, filters[len(fixture_filters) :]):
        mixed.extend(group[:12])
    write("dialect_normalize", mixed)


if __name__ == "__main__":
    main()
