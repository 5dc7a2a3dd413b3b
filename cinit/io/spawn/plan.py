"""`ChildPlan`: everything a child of cinit does between fork and exec, named.

The parent builds the plan (`cinit.io.spawn.launch`); the child carries it out
(`cinit.io.spawn.child`), whether it was forked for it just now (`cinit.io.spawn.fork`)
or forked at boot and handed the plan later (`cinit.io.spawn.prepared`).

The hand-over to a prepared child is one SOCK_SEQPACKET message (`to_wire`/`from_wire`):
its data is `marshal.dumps` of a dict, the fields of `WIRE_FIELDS` by name plus
`fd_count`; its SCM_RIGHTS ancillary data carries `fds` in layout order. `cgroup_fd`
never travels: a prepared child joined its cgroup before it got a plan. Both ends are the
same cinit (the child was forked from it), so the form has no version.
"""

from __future__ import annotations

import marshal

from cinit.boot_path import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

# The fields sent to a prepared child; `fds` go as SCM_RIGHTS, `cgroup_fd` stays behind.
WIRE_FIELDS = (
    "argv",
    "env",
    "exec_paths",
    "reset_signals",
    "new_session",
    "foreground",
    "groups",
    "gid",
    "uid",
    "cwd",
    "cwd_optional",
    "listen_pid",
    "fd_limit",
    "rlimits",
    "umask",
    "nice",
    "oom_score_adjust",
    "ignore_sigpipe",
    "hold",
)


class ChildPlan:
    """What one child does before exec, in this order (`cinit.io.spawn.child.carry_out`):

    reset `reset_signals` (ignored in cinit; an ignored disposition survives exec) to the
    default, then ignore SIGPIPE when `ignore_sigpipe` (systemd's IgnoreSIGPIPE=);
    `new_session` (else a new process group, which takes the terminal when
    `foreground` and stdin is one); join the cgroup through `cgroup_fd` (its cgroup.procs,
    -1: none, or joined already); lay out `fds` at 0, 1, 2, 3, ... (numbers in the process
    carrying the plan out) and close every other fd; while still privileged: set `nice`
    (None: keep), write `oom_score_adjust` to /proc/self/oom_score_adj (None: keep), give
    itself `fd_limit` (soft, hard; None: keep), then each of `rlimits` ((resource, soft,
    hard), Limit*=; they may raise a hard limit, which needs root); switch to `groups` and
    `gid` (None: keep cinit's), then `uid` (-1: keep); set `umask` (-1: keep); change to
    `cwd` ("": stay; a failure ignored when `cwd_optional`); set LISTEN_PID in `env` to its
    own pid when `listen_pid`; with `hold` (a start prepared ahead, `Launch.hold`), wait
    for `go` on its channel (anything else, or its end: exit quietly); empty its signal
    mask; exec `argv` with `env`, trying each of `exec_paths` in turn as execvp does.
    """

    __slots__ = (*WIRE_FIELDS, "cgroup_fd", "fds")

    def __init__(
        self,
        *,
        argv: list[str],
        env: dict[str, str],
        exec_paths: list[str],
        fds: list[int],
        reset_signals: list[int],
        new_session: bool = True,
        foreground: bool = False,
        cgroup_fd: int = -1,
        groups: list[int] | None = None,
        gid: int = -1,
        uid: int = -1,
        cwd: str = "",
        cwd_optional: bool = False,
        listen_pid: bool = False,
        fd_limit: tuple[int, int] | None = None,
        rlimits: list[tuple[int, int, int]] | None = None,
        umask: int = -1,
        nice: int | None = None,
        oom_score_adjust: int | None = None,
        ignore_sigpipe: bool = False,
        hold: bool = False,
    ) -> None:
        self.argv = argv
        self.env = env
        self.exec_paths = exec_paths
        self.fds = fds
        self.reset_signals = reset_signals
        self.new_session = new_session
        self.foreground = foreground
        self.cgroup_fd = cgroup_fd
        self.groups = groups
        self.gid = gid
        self.uid = uid
        self.cwd = cwd
        self.cwd_optional = cwd_optional
        self.listen_pid = listen_pid
        self.fd_limit = fd_limit
        self.rlimits = rlimits if rlimits is not None else []
        self.umask = umask
        self.nice = nice
        self.oom_score_adjust = oom_score_adjust
        self.ignore_sigpipe = ignore_sigpipe
        self.hold = hold

    def to_wire(self) -> bytes:
        """The message data for a prepared child (`fds` go beside it, as SCM_RIGHTS)."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in WIRE_FIELDS}
        fields["fd_count"] = len(self.fds)
        return marshal.dumps(fields)

    @classmethod
    def from_wire(cls, data: bytes, fds: list[int]) -> ChildPlan:
        """The plan in a message, with the `fds` that came with it (numbers in the receiving
        process). Raises ValueError when the message is not a plan or fds went missing."""
        fields = marshal.loads(data)
        if not isinstance(fields, dict) or fields.pop("fd_count", None) != len(fds):
            raise ValueError("the plan's fds did not all arrive")
        if set(fields) != set(WIRE_FIELDS):
            raise ValueError("not a child plan")
        return cls(fds=fds, **fields)
