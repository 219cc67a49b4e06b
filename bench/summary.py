#!/usr/bin/env python3
"""Turn bench/run.sh's results into the summary table of issue 10's targets (stdlib only).

Reads the RESULT lines that the scenarios left in RESULTS (one scenario per line,
`RESULT scenario=NAME key=value ...`) and, when the ceiling ran, its JSON (the reference
prototype's `run.sh bench --json`). Prints the Markdown tables (targets, then every figure) and
writes:
  --json FILE      every figure, the ceiling, the ratios and the verdicts
  --snippet FILE   a Markdown section to paste into docs/performance.md

Each Roster figure is divided by the ceiling figure the issue names: the prototype's lookup
for reads and the login decision, its group-commit insert for writes. Without a ceiling the
ratio targets are "n/a" and only the absolute targets (latency, memory, time) are judged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LOOKUP, INSERT = "lookup", "insert_group_commit"

# scenario -> (ceiling figure, minimum ratio or None, target text). Absolute targets are judged
# in verdict() below.
RATIO_TARGETS: dict[str, tuple[str, float | None, str]] = {
    "filter": (LOOKUP, 0.6, "≥ 0.6× lookup, p99 ≤ 2× its p99"),
    "get": (LOOKUP, 0.6, "≥ 0.6× lookup, p99 ≤ 2× its p99"),
    "login_decision": (LOOKUP, 0.6, "≥ 0.6× lookup"),
    "create": (INSERT, 0.5, "≥ 0.5× insert"),
    "patch_active": (INSERT, 0.4, "≥ 0.4× insert"),
    "put_user": (INSERT, 0.4, "≥ 0.4× insert"),
    "patch_big_group": (INSERT, 0.4, "≥ 0.4× insert and ≥ 0.9× patch_small_group"),
    "patch_small_group": (INSERT, None, "— (reference for patch_big_group)"),
    "million_filter": (LOOKUP, None, "— (see million_rss)"),
    "million_get": (LOOKUP, None, "— (see million_rss)"),
}
P99_FACTOR = {"filter": 2.0, "get": 2.0}
BIG_GROUP_MS, BIG_GROUP_RSS_MIB = 350.0, 32.0
ENTRA_SECONDS = 120.0
MILLION_RSS_MIB = 64.0
SHORT = {LOOKUP: "lookup", INSERT: "insert"}
# NAME_2nodes: the scenario with its connections split between two nodes on one PostgreSQL
# database, judged against NAME on one node (issue 11: coordination must cost little).
TWO_NODES, TWO_NODE_MIN = "_2nodes", 0.9


def parse_results(path: Path) -> list[dict[str, str]]:
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("RESULT "):
            continue
        kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
        if "scenario" in kv:
            rows.append(kv)
    return rows


def num(kv: dict[str, str], key: str) -> float | None:
    try:
        return float(kv[key])
    except (KeyError, ValueError):
        return None


def fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def verdict(name: str, kv: dict[str, str], ceiling: dict | None, by_name: dict[str, dict]) -> dict:
    """Ratio, target text, met (True/False/None for not judged), notes."""
    out: dict = {"ratio": None, "ratio_to": None, "target": "—", "met": None, "notes": []}
    rps, p99 = num(kv, "rps"), num(kv, "p99_ms")
    if kv.get("failed"):
        out["notes"].append(kv["failed"])
    if name in RATIO_TARGETS:
        base, minimum, text = RATIO_TARGETS[name]
        out["target"], out["ratio_to"] = text, base
        c = (ceiling or {}).get(base) or {}
        if rps is not None and c.get("rps"):
            out["ratio"] = rps / c["rps"]
        if minimum is not None:
            if kv.get("failed"):
                out["met"] = False
            elif out["ratio"] is None:
                out["notes"].append("no ceiling: ratio not judged")
            else:
                met = out["ratio"] >= minimum
                if name in P99_FACTOR and p99 is not None and c.get("p99_ms"):
                    p99_ratio = p99 / c["p99_ms"]
                    out["notes"].append(f"p99 {p99_ratio:.2f}× the ceiling's")
                    met = met and p99_ratio <= P99_FACTOR[name]
                if name == "patch_big_group":
                    small = num(by_name.get("patch_small_group", {}), "rps")
                    if small:
                        out["notes"].append(f"{rps / small:.2f}× patch_small_group")
                        met = met and rps / small >= 0.9
                    else:
                        out["notes"].append("patch_small_group not run")
                        met = False if not met else None  # the second half cannot be judged
                out["met"] = met
        if (num(kv, "non2xx") or 0) > 0:
            out["notes"].append(f"{kv['non2xx']} non-2xx")
            out["met"] = False if minimum is not None else out["met"]
    elif name.endswith(TWO_NODES):
        one = name[: -len(TWO_NODES)]
        out["target"], out["ratio_to"] = f"≥ {TWO_NODE_MIN}× one node", one
        single = num(by_name.get(one, {}), "rps")
        if rps is not None and single:
            out["ratio"] = rps / single
            out["met"] = out["ratio"] >= TWO_NODE_MIN and not kv.get("failed")
            if (num(kv, "non2xx") or 0) > 0:
                out["notes"].append(f"{kv['non2xx']} non-2xx")
                out["met"] = False
        else:
            out["notes"].append(f"{one} on one node not run")
    elif name == "get_big_group":
        out["target"] = f"≤ {BIG_GROUP_MS:.0f} ms, RSS growth ≤ {BIG_GROUP_RSS_MIB:.0f} MiB"
        p50, growth = num(kv, "p50_ms"), num(kv, "rss_growth_mib")
        out["notes"].append(
            f"{kv.get('requests', '?')} sequential requests, max {kv.get('max_ms', '?')} ms, "
            f"first byte {kv.get('ttfb_p50_ms', '?')} ms, {kv.get('members', '?')} members, "
            f"{fmt((num(kv, 'bytes') or 0) / 1048576)} MiB; RSS {kv.get('rss_before_mib', '?')} → "
            f"peak {kv.get('rss_peak_mib', '?')} MiB (+{kv.get('rss_growth_mib', '?')})"
        )
        if p50 is not None and growth is not None:
            out["met"] = p50 <= BIG_GROUP_MS and growth <= BIG_GROUP_RSS_MIB and not kv.get("failed")
    elif name == "entra_initial":
        out["target"] = f"< {ENTRA_SECONDS:.0f} s"
        secs = num(kv, "seconds")
        out["notes"].append(
            f"{kv.get('users', '?')} users, {kv.get('groups', '?')} groups, {kv.get('memberships', '?')} "
            f"memberships: {kv.get('requests', '?')} requests in {kv.get('seconds', '?')} s, "
            f"{kv.get('users_per_s', '?')} users/s, --concurrency {kv.get('concurrency', '?')}"
        )
        if secs is not None:
            out["met"] = secs < ENTRA_SECONDS and kv.get("ok") == "true"
    elif name == "custom_filter":
        out["target"] = "indexed ≫ in memory"
        out["notes"].append(
            f"{kv.get('users', '?')} users: in memory p50 {kv.get('memory_p50_ms', '?')} ms, "
            f"indexed p50 {kv.get('indexed_p50_ms', '?')} ms ({kv.get('speedup', '?')}×), "
            f"index built online in {kv.get('build_s', '?')} s"
        )
        speedup = num(kv, "speedup")
        if speedup is not None:
            out["met"] = speedup >= 10 and not kv.get("failed")
    elif name == "million_rss":
        out["target"] = f"RSS ≤ {MILLION_RSS_MIB:.0f} MiB"
        peak = num(kv, "rss_peak_mib")
        out["notes"].append(
            f"{kv.get('users', '?')} users; RSS after restart {kv.get('rss_start_mib', '?')} MiB, "
            f"peak while serving (VmHWM) {kv.get('rss_peak_mib', '?')} MiB"
        )
        if peak is not None:
            out["met"] = peak <= MILLION_RSS_MIB
    return out


def met_text(met: bool | None, target: str) -> str:
    if met is None:
        return "—" if target.startswith("—") else "n/a"
    return "yes" if met else "**NO**"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", required=True, type=Path)
    p.add_argument("--ceiling", type=Path, help="the prototype's JSON (absent: absolute figures only)")
    p.add_argument("--json", type=Path)
    p.add_argument("--snippet", type=Path)
    p.add_argument("--context", action="append", default=[], help="a line about the run (repeatable)")
    args = p.parse_args()

    rows = parse_results(args.results)
    ceiling = None
    if args.ceiling and args.ceiling.exists():
        try:
            ceiling = json.loads(args.ceiling.read_text(encoding="utf-8"))
        except ValueError as exc:
            print(f"warning: ceiling JSON unreadable ({exc}); absolute figures only", file=sys.stderr)
    by_name = {r["scenario"]: r for r in rows}

    scenarios = []
    for kv in rows:
        name = kv["scenario"]
        v = verdict(name, kv, ceiling, by_name)
        scenarios.append({
            "scenario": name,
            # a few sequential requests have no throughput worth a column
            "rps": None if name == "get_big_group" else num(kv, "rps"),
            "p50_ms": num(kv, "p50_ms"),
            "p99_ms": num(kv, "p99_ms"),
            "ratio": None if v["ratio"] is None else round(v["ratio"], 3),
            "ratio_to": v["ratio_to"],
            "target": v["target"],
            "met": v["met"],
            "notes": "; ".join(v["notes"]),
            "raw": kv,
        })

    lines = ["| scenario | req/s | p50 ms | p99 ms | ratio to ceiling | target | met | notes |",
             "|---|---:|---:|---:|---:|---|---|---|"]
    for s in scenarios:
        ratio = "—" if s["ratio"] is None else f"{s['ratio']:.2f}× {SHORT.get(s['ratio_to'], s['ratio_to'])}"
        lines.append(
            f"| {s['scenario']} | {fmt(s['rps'], 0)} | {fmt(s['p50_ms'], 2)} | {fmt(s['p99_ms'], 2)} | {ratio} "
            f"| {s['target']} | {met_text(s['met'], s['target'])} | {s['notes']} |"
        )
    if ceiling:
        lk, ins = ceiling.get(LOOKUP, {}), ceiling.get(INSERT, {})
        pg = ceiling.get("backend") == "postgres"
        insert_name = "durable insert" if pg else "group-commit insert"
        ceiling_line = (
            f"ceiling (reference prototype{' on PostgreSQL' if pg else ''}, same run, {ceiling.get('users')} users, {ceiling.get('duration_s')} s, "
            f"{ceiling.get('threads')} threads, {ceiling.get('connections')} connections): lookup "
            f"{fmt(lk.get('rps'), 0)}/s (p50 {lk.get('p50_ms')} ms, p99 {lk.get('p99_ms')} ms), {insert_name} "
            f"{fmt(ins.get('rps'), 0)}/s (p50 {ins.get('p50_ms')} ms, p99 {ins.get('p99_ms')} ms)"
        )
    else:
        ceiling_line = "ceiling: not measured in this run (absolute figures only; ratio targets not judged)"
    misses = [s["scenario"] for s in scenarios if s["met"] is False]
    verdict_line = ("targets missed: " + ", ".join(misses)) if misses else "targets missed: none"
    unjudged = [s["scenario"] for s in scenarios if s["met"] is None and not s["target"].startswith("—")]
    if unjudged:
        verdict_line += "; not judged (no ceiling or a figure missing): " + ", ".join(unjudged)

    # PostgreSQL runs: what the server sent to the database per request (bench/run.sh reads the
    # store's `roster_store::sql_stats` events before and after each scenario).
    sql_rows = [s for s in scenarios if "stmts_per_req" in s["raw"]]
    if sql_rows:
        lines += ["", "| scenario | statements / request | round trips / request | writers / commit |",
                  "|---|---:|---:|---:|"]
        for s in sql_rows:
            raw = s["raw"]
            lines.append(f"| {s['scenario']} | {raw['stmts_per_req']} | {raw.get('rtt_per_req', '—')} "
                         f"| {raw.get('writers_per_commit', '—')} |")

    table = "\n".join(lines)
    print(table)
    print()
    print(f"- {ceiling_line}")
    print(f"- {verdict_line}")

    if args.json:
        args.json.write_text(json.dumps({
            "context": args.context,
            "ceiling": ceiling,
            "scenarios": scenarios,
            "missed": misses,
            "not_judged": unjudged,
        }, indent=2) + "\n", encoding="utf-8")
    if args.snippet:
        ctx = "\n".join(f"- {c}" for c in args.context)
        args.snippet.write_text(
            f"{ctx}\n- {ceiling_line}\n\n{table}\n\n- {verdict_line}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
