#!/usr/bin/env python3
"""Run scim2-tester against a live SCIM 2.0 server and report the results.

Used by scripts/conformance.sh; can be run alone against any server:

    ROSTER_CONFORMANCE_TOKEN=... .venv/bin/python scripts/scim_conformance.py \
        --url http://127.0.0.1:8080/scim/v2/acme

The bearer token is read from the environment (ROSTER_CONFORMANCE_TOKEN) or
--token-file, never from the command line (other users can read argv).

Classification of scim2-tester statuses:
  passed  : SUCCESS, COMPLIANT, ACCEPTABLE
  failed  : ERROR, CRITICAL, DEVIATION (a SHOULD not followed: strict on purpose)
  skipped : SKIPPED (scim2-tester found nothing to test, printed with its reason)
            and any check named in the skip list (it still runs, and its real
            status is printed next to it).

The last line printed is always, alone on its line:
    conformance: N passed, M failed, K skipped

Exit status: 0 when nothing failed, 1 when a check failed, 2 when the run
could not be done at all (server unreachable, bad arguments, bad skip list).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASS_STATUSES = {"SUCCESS", "COMPLIANT", "ACCEPTABLE"}
FAIL_STATUSES = {"ERROR", "CRITICAL", "DEVIATION"}
SKIP_STATUSES = {"SKIPPED"}

TOKEN_ENV = "ROSTER_CONFORMANCE_TOKEN"


def summary_line(passed: int, failed: int, skipped: int) -> str:
    return f"conformance: {passed} passed, {failed} failed, {skipped} skipped"


def die(message: str, code: int = 2) -> None:
    print(f"conformance: ERROR: {message}", file=sys.stderr, flush=True)
    # Keep the summary line contract even when nothing could run.
    print(summary_line(0, 1, 0), flush=True)
    sys.exit(code)


@dataclass
class SkipEntry:
    name: str
    comment: str
    line: int
    used: int = 0


def load_skips(path: Path | None) -> list[SkipEntry]:
    """Parse the skip list: `NAME  # comment` per line; blank and comment lines ignored."""
    if path is None:
        return []
    if not path.is_file():
        die(f"skip list {path} does not exist")
    entries: list[SkipEntry] = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, comment = line.partition("#")
        name, comment = name.strip(), comment.strip()
        if not sep or not comment:
            die(
                f"{path}:{lineno}: skip entry {name!r} has no '# RFC section: reason' "
                "comment; every skip must say why"
            )
        if " " in name or "\t" in name:
            die(f"{path}:{lineno}: malformed check name {name!r}")
        entries.append(SkipEntry(name=name, comment=comment, line=lineno))
    return entries


def result_name(result: Any) -> str:
    title = result.title or "<untitled>"
    return f"{result.resource_type}/{title}" if result.resource_type else title


def matching_skip(result: Any, skips: list[SkipEntry]) -> SkipEntry | None:
    full = result_name(result)
    title = result.title or ""
    for entry in skips:
        if entry.name in (full, title):
            return entry
    return None


def one_line(value: Any, limit: int = 600) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def preflight(url: str, token: str, timeout: float) -> None:
    """Fail fast, with a clear message, when the server is not there or rejects the token."""
    import httpx2

    target = url.rstrip("/") + "/ServiceProviderConfig"
    try:
        response = httpx2.get(
            target,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/scim+json"},
            timeout=timeout,
            trust_env=False,
        )
    except httpx2.ConnectError as exc:
        die(f"cannot connect to {target}: {exc} (is the server running?)")
    except httpx2.TimeoutException as exc:
        die(f"timed out after {timeout}s talking to {target}: {exc}")
    except httpx2.HTTPError as exc:
        die(f"request to {target} failed: {exc}")
    if response.status_code in (401, 403):
        die(f"{target} answered {response.status_code}: the bearer token was rejected")
    if response.status_code != 200:
        # Not fatal: scim2-tester reports it as a failed check with details.
        print(
            f"conformance: warning: {target} answered HTTP {response.status_code}",
            file=sys.stderr,
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2/acme")
    parser.add_argument("--token-file", type=Path, help=f"file holding the bearer token (default: ${TOKEN_ENV})")
    parser.add_argument("--skips", type=Path, help="skip list file (see scripts/conformance-skips.txt)")
    parser.add_argument(
        "--require-resource-types",
        default="User,Group",
        help="comma-separated resource types whose CRUD checks must have run (default: User,Group; '' to disable)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    parser.add_argument("--report", type=Path, help="also write every result as JSON to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug data of passing checks too")
    args = parser.parse_args()

    if args.token_file:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            die(f"cannot read token file: {exc}")
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        die(f"no bearer token: set ${TOKEN_ENV} or pass --token-file")

    skips = load_skips(args.skips)

    try:
        import httpx2
        import scim2_tester
        from scim2_client.engines.httpx2 import SyncSCIMClient
    except ImportError as exc:
        die(f"scim2-tester is not installed ({exc}); run scripts/conformance.sh, which sets up .venv/")

    versions = {}
    try:
        from importlib.metadata import version

        for dist in ("scim2-tester", "scim2-client", "scim2-models", "httpx2"):
            versions[dist] = version(dist)
    except Exception:  # noqa: BLE001 - versions are informational only
        pass
    print(f"conformance: target {args.url}", flush=True)
    print("conformance: " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    if skips:
        print(f"conformance: skip list has {len(skips)} entr{'y' if len(skips) == 1 else 'ies'}:")
        for entry in skips:
            print(f"  - {entry.name}  # {entry.comment}")
    else:
        print("conformance: skip list is empty")

    preflight(args.url, token, args.timeout)

    http = httpx2.Client(
        base_url=args.url.rstrip("/"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=args.timeout,
        trust_env=False,  # never send the test traffic through a proxy from the environment
    )
    client = SyncSCIMClient(http)

    started = time.monotonic()
    try:
        results = scim2_tester.check_server(client)
    except Exception as exc:  # noqa: BLE001 - a crash of the tester is a failed run
        die(f"scim2-tester crashed: {type(exc).__name__}: {exc}")
    finally:
        http.close()
    elapsed = time.monotonic() - started

    passed = failed = skipped = 0
    failures: list[tuple[str, str, str]] = []
    report: list[dict[str, Any]] = []

    print(f"\nconformance: {len(results)} results in {elapsed:.1f}s\n", flush=True)
    for result in results:
        status = result.status.name
        name = result_name(result)
        reason = one_line(result.reason or "")
        entry = matching_skip(result, skips)
        if entry is not None:
            entry.used += 1
            outcome = "skipped"
            label = f"SKIPPED(list, was {status})"
            note = f"skip list line {entry.line}: {entry.comment}"
            if status in PASS_STATUSES:
                note += "  [now passes: remove it from the skip list]"
            reason = f"{note}; {reason}" if reason else note
        elif status in PASS_STATUSES:
            outcome, label = "passed", status
        elif status in SKIP_STATUSES:
            outcome, label = "skipped", "SKIPPED(tester)"
        else:
            outcome, label = "failed", status  # FAIL_STATUSES and anything unknown

        if outcome == "passed":
            passed += 1
        elif outcome == "skipped":
            skipped += 1
        else:
            failed += 1
            failures.append((name, status, reason or "(no reason given)"))

        print(f"{label:<12} {name}")
        if reason and (outcome != "passed" or args.verbose):
            print(f"             {reason}")
        if result.data is not None and (outcome == "failed" or args.verbose):
            print(f"             data: {one_line(result.data)}")
        report.append(
            {
                "name": name,
                "status": status,
                "outcome": outcome,
                "reason": result.reason,
                "tags": sorted(result.tags or []),
            }
        )

    # Guard against a run that silently tested nothing: scim2-tester stops
    # after discovery when the server describes no usable resource type.
    required = [rt.strip() for rt in args.require_resource_types.split(",") if rt.strip()]
    seen_types = {r.resource_type for r in results if r.resource_type}
    for rt in required:
        if rt not in seen_types:
            failed += 1
            msg = (
                f"no CRUD check ran for resource type {rt!r} (discovery published: "
                f"{sorted(seen_types) or 'none'})"
            )
            failures.append((f"{rt}/<resource checks>", "MISSING", msg))
            print(f"{'MISSING':<12} {rt}/<resource checks>\n             {msg}")

    for entry in skips:
        if entry.used == 0:
            print(
                f"conformance: warning: skip list line {entry.line} ({entry.name}) matched no check",
                file=sys.stderr,
            )

    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print()
    if failures:
        print(f"conformance: {len(failures)} failure(s):")
        for name, status, reason in failures:
            print(f"  FAIL {name} [{status}]: {reason}")
    print(summary_line(passed, failed, skipped), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
