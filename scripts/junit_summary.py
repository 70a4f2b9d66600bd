"""Read a pytest JUnit XML report and decide whether a run really tested something.

    python scripts/junit_summary.py REPORT.xml --label sqlite [--require-postgres-tests]

Prints one line of counts. Exits non-zero when no test ran (all skipped or none collected),
when something failed, or, with --require-postgres-tests, when tests that only run on PostgreSQL
were skipped (a sign that the "PostgreSQL" run was not on PostgreSQL at all) or none of the
concurrency proofs passed.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET

POSTGRES_SKIP_HINT = "on PostgreSQL"  # the reason of tests.conftest.requires_postgres


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--label", default="tests")
    ap.add_argument("--require-postgres-tests", action="store_true")
    args = ap.parse_args(argv)

    try:
        root = ET.parse(args.report).getroot()  # noqa: S314  (the report our own pytest just wrote)
    except (OSError, ET.ParseError) as err:
        print(
            f"[{args.label}] no usable test report ({err}): the run did not complete",
            file=sys.stderr,
        )
        return 3

    cases = list(root.iter("testcase"))
    passed = failed = errored = skipped = xfailed = 0
    pg_skips: list[str] = []
    concurrency_passed = 0
    for case in cases:
        tags = {child.tag for child in case}
        if "failure" in tags:
            failed += 1
        elif "error" in tags:
            errored += 1
        elif "skipped" in tags:
            skip = case.find("skipped")
            kind = (skip.get("type") or "") if skip is not None else ""
            msg = (skip.get("message") or "") if skip is not None else ""
            if "xfail" in kind:
                xfailed += 1
                continue
            skipped += 1
            if POSTGRES_SKIP_HINT in msg:
                pg_skips.append(f"{case.get('classname')}::{case.get('name')}")
        else:
            passed += 1
            if "concurrency" in (case.get("classname") or ""):
                concurrency_passed += 1

    print(
        f"[{args.label}] {len(cases)} collected: {passed} passed, {failed} failed, {errored} errors, {skipped} skipped, {xfailed} xfailed"
    )
    status = 0
    if failed or errored:
        status = 1
    if passed == 0:
        print(
            f"[{args.label}] NO TEST PASSED: every test was skipped or none was collected. That is a failure.",
            file=sys.stderr,
        )
        status = status or 5
    if args.require_postgres_tests:
        if pg_skips:
            print(
                f"[{args.label}] {len(pg_skips)} PostgreSQL-only tests were SKIPPED on the PostgreSQL run, e.g. {pg_skips[0]}",
                file=sys.stderr,
            )
            status = status or 4
        if concurrency_passed == 0:
            print(
                f"[{args.label}] none of the concurrency proofs (tests/concurrency) passed on PostgreSQL",
                file=sys.stderr,
            )
            status = status or 4
    return status


if __name__ == "__main__":
    sys.exit(main())
