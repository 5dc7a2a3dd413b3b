"""Import tracer for sizing the standalone build (`make trace-imports`; packaging/README.md).

On PYTHONPATH with IMPORT_TRACE_DIR set, every Python process started from the cinit
script appends each module it imports, as it imports it, to IMPORT_TRACE_DIR/PID.txt. One
line per import, flushed at once: a process killed by SIGKILL or leaving through os._exit
(as PID 1 does) still leaves its list. Only processes whose argv[0] names `cinit` record
(the test runner and the tests' Python services are not what the bundle must hold).
`packaging/import-trace/report.py` merges the files and holds them against a build (`make
trace-imports`). Not shipped: a development tool. The tracer holds a file open in each
process, so a test counting a handed-off program's fds fails under it (test_handoff).
"""

from __future__ import annotations

import os
import sys


class _Recorder:
    """A meta path finder that finds nothing: it only writes down the names asked for."""

    def __init__(self, path: str) -> None:
        self._out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
        self._seen: set[str] = set()

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name not in self._seen:
            self._seen.add(name)
            self._out.write(name + "\n")


def _install() -> None:
    where = os.environ.get("IMPORT_TRACE_DIR")
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not where or not argv0.startswith("cinit"):
        return
    recorder = _Recorder(os.path.join(where, f"{os.getpid()}.txt"))
    for name in sys.modules:  # what the interpreter's start already imported
        recorder.find_spec(name)
    sys.meta_path.insert(0, recorder)


_install()
