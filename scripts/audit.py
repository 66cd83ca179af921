"""`make audit`: pip-audit over the installed environment, against audit-allowlist.toml.

Exit 0 when no known vulnerability is found (or every one found is allowlisted with a reason
and a recent review), 1 otherwise. When the vulnerability service cannot be reached, or knows
none of the packages, that is reported loudly and does not fail: the audit did not happen, and
says so, rather than passing in silence or blocking every build on someone else's outage.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = ROOT / "audit-allowlist.toml"
MAX_AGE = datetime.timedelta(days=90)
TIMEOUT = 300


@dataclass(frozen=True)
class Verdict:
    code: int
    lines: list[str]


def load_allowlist(text: str, today: datetime.date) -> dict[str, dict[str, Any]]:
    entries = tomllib.loads(text).get("ignore", [])
    allowed: dict[str, dict[str, Any]] = {}
    for entry in entries:
        missing = {"id", "package", "reason", "reviewed"} - set(entry)
        if missing or not str(entry.get("reason", "")).strip():
            raise ValueError(f"allowlist entry {entry} needs id, package, reason and reviewed")
        if not isinstance(entry["reviewed"], datetime.date):
            raise ValueError(f"allowlist entry {entry['id']}: reviewed must be a date")  # noqa: TRY004
        if today - entry["reviewed"] > MAX_AGE:
            raise ValueError(f"allowlist entry {entry['id']} was last reviewed over 90 days ago")
        allowed[entry["id"]] = entry
    return allowed


def evaluate(report: dict[str, Any], allowed: dict[str, dict[str, Any]]) -> Verdict:
    deps = [d for d in report.get("dependencies", []) if d.get("skip_reason") != _EDITABLE]
    audited = [d for d in deps if "skip_reason" not in d]
    skipped = [d for d in deps if "skip_reason" in d]
    if not audited:
        return Verdict(
            0,
            [
                "pip-audit: NOT AUDITED: the vulnerability service knows none of the "
                f"{len(deps)} installed packages (unreachable, or a mirror without it).",
                "pip-audit: reported, not failed; run `make audit` where the service is reachable.",
            ],
        )
    lines = [f"pip-audit: {len(audited)} packages audited, {len(skipped)} skipped"]
    lines += [f"  skipped {d['name']}: {d['skip_reason']}" for d in skipped]
    failing = []
    for dep in audited:
        for vuln in dep.get("vulns", []):
            ids = {vuln["id"], *vuln.get("aliases", [])}
            entry = next((allowed[i] for i in ids if i in allowed), None)
            name = f"{dep['name']} {dep['version']}: {vuln['id']}"
            if entry is not None and entry["package"].lower() == dep["name"].lower():
                lines.append(f"  allowed {name} ({entry['reason']}; {entry['reviewed']})")
            else:
                fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
                failing.append(f"  VULNERABLE {name} (fixed in: {fixes})")
    lines += failing
    lines.append(f"pip-audit: {len(failing)} known vulnerabilities")
    return Verdict(1 if failing else 0, lines)


_EDITABLE = "distribution marked as editable"


def main() -> int:
    try:
        allowed = load_allowlist(ALLOWLIST.read_text(), datetime.datetime.now(datetime.UTC).date())
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"pip-audit: {ALLOWLIST.name}: {exc}", file=sys.stderr)
        return 1
    command = [
        str(Path(sys.executable).with_name("pip-audit")),
        "--skip-editable",
        "--progress-spinner=off",
        "--format=json",
    ]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        report = json.loads(run.stdout)
    except (subprocess.TimeoutExpired, ValueError) as exc:
        print(f"pip-audit: NOT AUDITED: the vulnerability service failed ({exc!r:.200})")
        print("pip-audit: reported, not failed")
        return 0
    verdict = evaluate(report, allowed)
    print("\n".join(verdict.lines))
    return verdict.code


if __name__ == "__main__":
    sys.exit(main())
