"""Compare two JUnit XML reports of the same test suites: stock Odoo, then Odoo with the addon.

Prints the counts of both runs and the tests failing in each; exits 1 when a test that
passes on stock Odoo fails with the addon (or is missing from its run).
"""

import sys
import xml.etree.ElementTree as ET


def outcomes(path):
    """Return ``{test id: 'passed' | 'failed' | 'skipped'}`` from a JUnit XML report."""
    results = {}
    for case in ET.parse(path).iter("testcase"):
        test_id = f"{case.get('classname')}.{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            results[test_id] = "failed"
        elif case.find("skipped") is not None:
            results[test_id] = "skipped"
        else:
            results[test_id] = "passed"
    return results


def summary(label, results):
    states = list(results.values())
    counts = {state: states.count(state) for state in ("passed", "failed", "skipped")}
    print(f"{label}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    for test_id in sorted(t for t, state in results.items() if state == "failed"):
        print(f"    failed: {test_id}")


def main(stock_path, addon_path):
    stock, addon = outcomes(stock_path), outcomes(addon_path)
    summary("stock Odoo", stock)
    summary("with crm_workflow_automation", addon)
    broken = sorted(t for t, state in stock.items() if state == "passed" and addon.get(t) != "passed")
    if broken:
        print(f"{len(broken)} test(s) pass on stock Odoo but not with the addon:")
        for test_id in broken:
            print(f"    {test_id}: {addon.get(test_id, 'missing')}")
        return 1
    print("The addon changes no outcome of Odoo's own tests.")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
