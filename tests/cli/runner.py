"""Run the ``flowad`` command in this process (fast) or in a new one (the real entry point).

Both return a :class:`subprocess.CompletedProcess` with the exit status and what was printed, so a
test reads the same either way. A new Python process costs seconds of imports, so most tests run
the command in-process; those that need a real process (an environment, a kill, the entry point
itself) ask for one.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings
from unittest import mock


def flowad(*args, cwd=None, env=None, new_process: bool = False, timeout: int = 600) -> subprocess.CompletedProcess:
    argv = [str(a) for a in args]
    if new_process or env is not None:
        return subprocess.run([sys.executable, "-m", "flowad", *argv], capture_output=True, text=True, cwd=cwd,
                              timeout=timeout, env=env)
    from flowad.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        stack.enter_context(warnings.catch_warnings())
        stack.enter_context(mock.patch.object(sys, "argv", ["flowad", *argv]))
        stack.enter_context(mock.patch.object(warnings, "showwarning", warnings.showwarning))
        if cwd is not None:
            stack.enter_context(contextlib.chdir(os.fspath(cwd)))
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return subprocess.CompletedProcess(["flowad", *argv], code, stdout.getvalue(), stderr.getvalue())
