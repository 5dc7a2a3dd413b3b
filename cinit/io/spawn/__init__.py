"""The one way cinit starts a process: fork, set the child up with `os.*` calls only, exec.

Why not `subprocess`: its exit-status bookkeeping competes with the reaper, and its
`preexec_fn` is unsafe in a threaded process. Why not `os.posix_spawn`: in Python 3.11 it
cannot change directory, user or cgroup, nor set LISTEN_PID to the child's own pid.

The parts, in the order a spawn meets them:

- `launch`: `SpawnRequest` (what to start); `spawn`/`Launch` make it a `ChildPlan`,
  have a child carry the plan out and wait for its exec;
- `plan`: `ChildPlan`, everything a child does before exec, and its form on the wire;
- `fork`: a fresh fork under `ProcessTable.lock` (the pid is registered, its pidfd
  opened, before anybody can reap it), and the child's failure report made a `SpawnError`;
- `child`: the code a child runs between fork and exec, reporting a failure as
  `stage:errno:detail` on a close-on-exec fd (end of file with no data: it exec'd);
- `prepared`: children forked at boot into a unit's cgroup and handed their plan later;
  not imported here (only a boot with units needs it).

Arrows: launch -> fork -> child -> plan, prepared -> child; nothing imports launch back.
"""

from cinit.io.spawn.child import STAGE_EXIT_CODES
from cinit.io.spawn.fork import SpawnError, describe_errno
from cinit.io.spawn.launch import (
    DEFAULT_PATH,
    DEVNULL,
    Launch,
    SpawnRequest,
    can_exec,
    exec_candidates,
    raise_fd_limit,
    service_fd_limit,
    spawn,
)
from cinit.io.spawn.plan import ChildPlan

__all__ = [
    "DEFAULT_PATH",
    "DEVNULL",
    "STAGE_EXIT_CODES",
    "ChildPlan",
    "Launch",
    "SpawnError",
    "SpawnRequest",
    "can_exec",
    "describe_errno",
    "exec_candidates",
    "raise_fd_limit",
    "service_fd_limit",
    "spawn",
]
