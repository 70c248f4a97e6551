"""tests/http/run_schemathesis.py — `schemathesis` (the CLI, same arguments) with one
work-around: on CPython < 3.11.5 (Debian 12 ships 3.11.2) ast.parse called deep in the
stack can fail with "SystemError: AST constructor recursion depth mismatch"
(CPython gh-106905), and hypothesis calls it only to *describe* lambdas in the repr of
recursive strategies.  There, lambdas are described without their source."""
import sys

if sys.version_info < (3, 11, 5):
    from hypothesis.internal import lambda_sources

    lambda_sources.lambda_description = lambda f: "lambda: <source not shown>"

from schemathesis.cli import schemathesis  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "schemathesis"
    sys.exit(schemathesis())
