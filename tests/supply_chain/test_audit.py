"""scripts/audit.py: how a pip-audit report and the allowlist become a verdict."""

from __future__ import annotations

import datetime
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "audit", Path(__file__).resolve().parents[2] / "scripts" / "audit.py"
)
assert _SPEC is not None
assert _SPEC.loader is not None
audit: Any = importlib.util.module_from_spec(_SPEC)
sys.modules["audit"] = audit  # dataclasses look their module up there
_SPEC.loader.exec_module(audit)

TODAY = datetime.date(2026, 11, 28)
VULN = {"id": "GHSA-aaaa-bbbb-cccc", "aliases": ["CVE-2026-1"], "fix_versions": ["2.0"]}


def _report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": [{"name": "pli", "skip_reason": audit._EDITABLE}, *deps]}


def test_a_clean_report_passes() -> None:
    verdict = audit.evaluate(_report({"name": "fastapi", "version": "1", "vulns": []}), {})
    assert verdict.code == 0
    assert "0 known vulnerabilities" in verdict.lines[-1]


def test_a_vulnerability_fails_with_its_fix() -> None:
    verdict = audit.evaluate(_report({"name": "fastapi", "version": "1", "vulns": [VULN]}), {})
    assert verdict.code == 1
    assert any(
        "VULNERABLE fastapi 1: GHSA-aaaa-bbbb-cccc (fixed in: 2.0)" in x for x in verdict.lines
    )


def test_an_allowlisted_vulnerability_passes_by_id_or_alias() -> None:
    text = """
[[ignore]]
id = "CVE-2026-1"
package = "FastAPI"
reason = "unreachable: we never call it"
reviewed = 2026-11-01
"""
    allowed = audit.load_allowlist(text, TODAY)
    verdict = audit.evaluate(_report({"name": "fastapi", "version": "1", "vulns": [VULN]}), allowed)
    assert verdict.code == 0
    assert any("allowed fastapi 1" in x and "unreachable" in x for x in verdict.lines)
    # The same advisory in another package is not covered by that entry.
    other = _report({"name": "starlette", "version": "1", "vulns": [VULN]})
    assert audit.evaluate(other, allowed).code == 1


@pytest.mark.parametrize(
    "entry",
    [
        'id = "X"\npackage = "p"\nreviewed = 2026-11-01',  # no reason
        'id = "X"\npackage = "p"\nreason = " "\nreviewed = 2026-11-01',  # an empty one
        'id = "X"\npackage = "p"\nreason = "r"',  # no date
        'id = "X"\npackage = "p"\nreason = "r"\nreviewed = "yesterday"',  # not a date
        'id = "X"\npackage = "p"\nreason = "r"\nreviewed = 2026-01-01',  # not reviewed lately
    ],
)
def test_allowlist_entries_need_a_reason_and_a_recent_date(entry: str) -> None:
    with pytest.raises(ValueError, match="allowlist entry"):
        audit.load_allowlist(f"[[ignore]]\n{entry}\n", TODAY)


def test_the_real_allowlist_is_valid() -> None:
    assert isinstance(audit.load_allowlist(audit.ALLOWLIST.read_text(), TODAY), dict)


def test_an_unreachable_service_is_reported_not_failed() -> None:
    report = _report(
        {"name": "fastapi", "skip_reason": "Dependency not found on PyPI and could not be audited"}
    )
    verdict = audit.evaluate(report, {})
    assert verdict.code == 0
    assert "NOT AUDITED" in verdict.lines[0]
