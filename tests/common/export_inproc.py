"""scripts/export_sklearn.py run through its own entry point, main(argv), in the calling
process: the same code as the command, without an interpreter start and an import of
scikit-learn per model (about a second each, most of some tests' time). The tests that check
the command itself (usage, --help, exit codes) still run it as a program."""
import contextlib
import io
import os
import sys

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts")
EXPORT = os.path.join(SCRIPTS, "export_sklearn.py")
sys.path.insert(0, SCRIPTS)
import export_sklearn  # noqa: E402


class Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def run_export(args):
    """export_sklearn.main([EXPORT] + args): its exit code and what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = export_sklearn.main([EXPORT] + list(args))
    return Result(rc, err.getvalue())
