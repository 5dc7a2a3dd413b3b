"""Fixtures of the end-to-end suite: boot unit sets with cinit as a real PID 1.

Each run is `unshare --pid --fork --mount-proc` (new PID and mount namespaces, private
propagation) of a small shell wrapper that, as the namespace's PID 1, optionally
bind-mounts files over real ones (copies of /etc/passwd and /etc/group, scripts at
/usr/local/bin/...: the host's files are never touched), stamps CLOCK_REALTIME in ns just
before it execs cinit, then execs
`cinit --units U --drop-in D --runtime-dir <tmp>/<name>/run [options]`.
Helpers the tests import live in e2e_support.py.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from e2e_support import UNSHARE, Boot, LineReader, Pid1Run, pid1_helpers, write_units

# Teardown waits this long for cinit's orderly stop before it kills the namespace.
STOP_GRACE = 5.0


def _wrapper(binds: Sequence[tuple[Path, str]], stamp: Path) -> list[str]:
    steps = ["set -e"]
    steps += [f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}" for src, dst in binds]
    steps.append(f"date +%s%N > {shlex.quote(str(stamp))}")
    steps.append('exec "$@"')
    return ["/bin/sh", "-c", "; ".join(steps), "cinit-e2e-wrapper"]


def _child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CINIT_", "NOTIFY_"))}
    env.update(extra or {})
    return env


@pytest.fixture
def boot(tmp_path: Path, cinit_cmd: list[str]) -> Iterator[Callable[..., Boot]]:
    """Factory: boot `units` (core) and `drop_ins` with cinit as PID 1; cleans up.

    `binds` are (source, target) bind mounts made inside the namespace before cinit runs;
    `user_db=True` adds private copies of /etc/passwd and /etc/group (returned paths:
    tmp_path/etc/passwd, tmp_path/etc/group) bound over the real ones.
    """
    if pid1_helpers.peer_is_tini():
        pytest.skip("unit supervision is cinit's own; the init under test is tini")
    problem = pid1_helpers._unshare_problem()
    if problem:
        pytest.skip(problem)
    boots: list[Boot] = []

    def start(
        units: Mapping[str, str],
        drop_ins: Mapping[str, str] | None = None,
        *,
        options: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        binds: Sequence[tuple[Path, str]] = (),
        user_db: bool = False,
        name: str = "boot",
    ) -> Boot:
        base = tmp_path / name
        units_dir = write_units(base / "units", units)
        drop_in_dir = write_units(base / "drop-in", drop_ins or {})
        all_binds = list(binds)
        if user_db:
            etc = tmp_path / "etc"
            etc.mkdir(exist_ok=True)
            for file in ("passwd", "group"):
                shutil.copyfile(f"/etc/{file}", etc / file)
                (etc / file).chmod(0o644)
                all_binds.append((etc / file, f"/etc/{file}"))
        stamp = base / "exec-stamp"
        argv = [
            *UNSHARE, *_wrapper(all_binds, stamp), *cinit_cmd,
            "--units", str(units_dir), "--drop-in", str(drop_in_dir),
            "--runtime-dir", str(base / "run"), *options,
        ]
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=tmp_path, env=_child_env(env),
        )
        run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
        started = Boot(run, stamp)
        boots.append(started)
        return started

    yield start
    for started in boots:
        started.run.terminate(STOP_GRACE)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory under /tmp that services running as another user can reach (0755).

    tmp_path lies under /tmp/pytest-of-root (0700), which other users cannot traverse.
    """
    path = Path(tempfile.mkdtemp(prefix="cinit-e2e-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
