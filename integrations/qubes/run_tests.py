"""Runs the bridge's tests (python3 -m unittest) and writes a summary in the shape of
vitest's JSON report, for scripts/test.sh's total: run_tests.py REPORT.json"""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    suite = unittest.defaultTestLoader.discover(os.path.join(HERE, "tests"), top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    summary = {"numPassedTests": result.testsRun - failed - skipped, "numFailedTests": failed,
               "numPendingTests": skipped, "numTodoTests": 0, "success": failed == 0}
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as out:
            json.dump(summary, out)
    for reason in sorted({why for _, why in result.skipped}):
        print("skipped: " + reason)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
