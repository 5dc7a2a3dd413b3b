"""Issue 15's lifecycle directives on real processes, cinit as PID 1 in a PID namespace.

KillMode=process and mixed, SendSIGHUP=, RestartPreventExitStatus=, SuccessExitStatus=,
PIDFile= on Type=simple, NotifyAccess=, BindsTo=, PartOf=, Conflicts=, Requisite=,
Assert*= and ConditionVirtualization=. The pure decisions behind them:
tests/actors/test_unit_lifecycle_directives.py and test_supervisor_dependencies.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Boot, cinit_line, notify_exec, python_exec, shell_script, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]


def cli(cinit_cmd: list[str], runtime: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    argv = [*cinit_cmd, *args, "--runtime-dir", str(runtime)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)


def status(cinit_cmd: list[str], runtime: Path) -> dict[str, Any]:
    done = cli(cinit_cmd, runtime, "status", "--json")
    assert done.returncode in (0, 3), done.stderr
    units: dict[str, Any] = json.loads(done.stdout)["units"]
    return units


def state(cinit_cmd: list[str], runtime: Path, unit: str) -> str:
    return str(status(cinit_cmd, runtime)[unit]["state"])


def booted(boot: Booter, tmp_path: Path, units: dict[str, str]) -> tuple[Boot, Path]:
    run = boot(units)
    runtime = tmp_path / "boot" / "run"
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket" + run.report())
    return run, runtime


def wait_state(cinit_cmd: list[str], runtime: Path, unit: str, want: str, run: Boot) -> None:
    last: list[str] = []

    def reached() -> bool:
        last[:] = [state(cinit_cmd, runtime, unit)]
        return last[0] == want

    try:
        wait_until(reached, 15, f"{unit} {want}")
    except AssertionError as exc:
        raise AssertionError(f"{exc} (is {last}){run.report()}") from None


def host_descendants(pid: int) -> dict[int, str]:
    """Every live process below host pid `pid`: host pid -> its command name."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        names[int(entry)] = name
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = names[child]
                todo.append(child)
    return found


def proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


# ---- KillMode=, SendSIGHUP= ------------------------------------------------------------------


def test_kill_mode_process_leaves_a_child_alive_which_is_reaped_later(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    started = tmp_path / "started"
    script = shell_script(tmp_path / "main.sh", f"""
        sleep 300 &
        echo up > {started}
        wait
        """)
    run, runtime = booted(boot, tmp_path, {
        "keep.service": f"[Service]\nKillMode=process\nExecStart={script}\n",
    })  # fmt: skip
    wait_until(started.exists, 10, "the script's start" + run.report())
    init = run.run.init_pid()
    (sleeper,) = [pid for pid, name in host_descendants(init).items() if name == "sleep"]
    assert cli(cinit_cmd, runtime, "stop", "keep.service").returncode == 0, run.report()
    wait_state(cinit_cmd, runtime, "keep.service", "inactive", run)
    assert proc_state(sleeper) in ("S", "R"), "KillMode=process signalled the child" + run.report()
    os.kill(sleeper, 9)
    # Orphaned to PID 1 when the script died: cinit reaps it (no zombie left).
    wait_until(lambda: proc_state(sleeper) is None, 10, "the leftover reaped" + run.report())
    # Started again, its next leftover is still there at shutdown: cinit exits 0 anyway.
    started.unlink()
    assert cli(cinit_cmd, runtime, "start", "keep.service").returncode == 0, run.report()
    wait_until(started.exists, 10, "the second start" + run.report())
    assert run.terminate() == 0, run.report()


def test_kill_mode_mixed_kills_the_rest_once_the_main_process_is_gone(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    log = tmp_path / "child.log"
    child = shell_script(tmp_path / "child.sh", f"""
        trap 'echo child got TERM >> {log}' TERM
        echo child up >> {log}
        while true; do sleep 0.1; done
        """)
    script = shell_script(tmp_path / "main.sh", f"""
        {child} &
        wait
        """)
    run, runtime = booted(boot, tmp_path, {
        "mixed.service": f"[Service]\nKillMode=mixed\nTimeoutStopSec=60\nExecStart={script}\n",
    })  # fmt: skip
    wait_until(lambda: log.exists() and "child up" in log.read_text(), 10, "child" + run.report())
    began = time.monotonic()
    assert cli(cinit_cmd, runtime, "stop", "mixed.service").returncode == 0, run.report()
    wait_state(cinit_cmd, runtime, "mixed.service", "inactive", run)
    assert time.monotonic() - began < 30  # not the stop timeout: SIGKILL went out at once
    assert "got TERM" not in log.read_text(), "the child was sent SIGTERM" + run.report()
    init = run.run.init_pid()
    assert not [n for n in host_descendants(init).values() if n in ("child.sh", "sleep")]
    assert run.terminate() == 0, run.report()


def test_send_sighup_follows_the_kill_signal(boot: Booter, tmp_path: Path) -> None:
    logger = python_exec("signal_logger.py", "--exit-after", "2", "--timeout", "30", "TERM", "HUP")
    run = boot({"hup.service": f"[Service]\nSendSIGHUP=yes\nExecStart={logger}\n"})
    run.wait_out(r"^hup\.service: READY \d+$")
    assert run.terminate() == 0, run.report()
    # Both arrive (sent in this order; when both are pending the kernel hands the lower
    # number, SIGHUP, over first, so the order they are seen in is not checked).
    lines = run.stdout().splitlines()
    assert {"hup.service: SIGTERM", "hup.service: SIGHUP"} <= set(lines), run.report()
    assert run.count_err(cinit_line("hup.service", r"did not stop.*")) == 0, run.report()


def test_restart_kill_signal_stops_a_restarted_unit(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    logger = python_exec("signal_logger.py", "--exit-after", "1", "--timeout", "60", "USR2", "TERM")
    run, runtime = booted(boot, tmp_path, {
        "usr.service": f"[Service]\nRestartKillSignal=SIGUSR2\nExecStart={logger}\n",
    })  # fmt: skip
    run.wait_out(r"^usr\.service: READY \d+$")
    assert cli(cinit_cmd, runtime, "restart", "usr.service").returncode == 0, run.report()
    run.wait_out(r"^usr\.service: SIGUSR2$")
    wait_until(lambda: run.stdout().count("usr.service: READY") == 2, 10, "the second run")
    assert run.terminate() == 0, run.report()
    lines = [line for line in run.stdout().splitlines() if line.startswith("usr.service: SIG")]
    assert lines == ["usr.service: SIGUSR2", "usr.service: SIGTERM"], run.report()


# ---- exit statuses -----------------------------------------------------------------------------


def test_restart_prevent_exit_status_stops_restart_always(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    run, runtime = booted(boot, tmp_path, {
        "once.service": (
            "[Service]\nRestart=always\nRestartSec=50ms\nRestartPreventExitStatus=3\n"
            "ExecStart=/bin/sh -c 'exit 3'\n"
        ),
        "again.service": (
            "[Service]\nRestart=always\nRestartSec=50ms\nRestartPreventExitStatus=3\n"
            "StartLimitBurst=3\nExecStart=/bin/sh -c 'exit 4'\n"
        ),
    })  # fmt: skip
    run.wait_err(cinit_line("once.service", r"failed \(exit-code\)"))
    run.wait_err(cinit_line("again.service", r"failed \(start-limit-hit\)"))
    assert run.count_err(cinit_line("once.service", r"started \(pid \d+\)")) == 1, run.report()
    assert run.count_err(cinit_line("again.service", r"started \(pid \d+\)")) == 3, run.report()
    assert state(cinit_cmd, runtime, "once.service") == "failed"
    assert run.terminate() == 0, run.report()


def test_success_exit_status_42_is_a_clean_end(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    run, runtime = booted(boot, tmp_path, {
        "fine.service": "[Service]\nSuccessExitStatus=42\nExecStart=/bin/sh -c 'exit 42'\n",
    })  # fmt: skip
    run.wait_err(cinit_line("fine.service", r"exited \(status=42\)"))
    wait_state(cinit_cmd, runtime, "fine.service", "exited", run)
    assert run.count_err(cinit_line("fine.service", "failed.*")) == 0, run.report()
    assert run.terminate() == 0, run.report()


# ---- PIDFile=, NotifyAccess= ------------------------------------------------------------------


def test_pid_file_on_a_simple_service_follows_the_daemon_it_names(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    pidfile = tmp_path / "daemon.pid"
    script = shell_script(tmp_path / "wrapper.sh", f"""
        sleep 300 &
        echo $! > {pidfile}
        exit 0
        """)
    run, runtime = booted(boot, tmp_path, {
        "wrapped.service": f"[Service]\nType=simple\nPIDFile={pidfile}\nExecStart={script}\n",
    })  # fmt: skip
    wait_until(pidfile.exists, 10, "the PID file" + run.report())
    daemon = int(pidfile.read_text())

    def main_pid() -> object:
        return status(cinit_cmd, runtime)["wrapped.service"].get("main_pid")

    wait_until(lambda: main_pid() == daemon, 10, f"main pid {daemon}" + run.report())
    assert state(cinit_cmd, runtime, "wrapped.service") == "active"
    assert run.terminate() == 0, run.report()
    assert run.count_err(cinit_line("wrapped.service", "stopped")) == 1, run.report()


def test_a_pid_file_naming_another_units_process_is_refused(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    pidfile = tmp_path / "other.pid"
    other = shell_script(tmp_path / "other.sh", f"""
        echo $$ > {pidfile}
        exec sleep 300
        """)
    run, runtime = booted(boot, tmp_path, {
        "other.service": f"[Service]\nExecStart={other}\n",
        "stale.service": (
            f"[Unit]\nAfter=other.service\n[Service]\nPIDFile={pidfile}\n"
            "ExecStart=/bin/sh -c 'sleep 0.5'\n"
        ),
    })  # fmt: skip
    wait_until(pidfile.exists, 10, "other's pid" + run.report())
    wait_state(cinit_cmd, runtime, "stale.service", "exited", run)
    units = status(cinit_cmd, runtime)
    assert units["other.service"]["state"] == "active", run.report()
    assert units["other.service"]["main_pid"] == int(pidfile.read_text()), run.report()
    assert run.count_err(cinit_line("stale.service", "main process is now.*")) == 0, run.report()
    assert run.terminate() == 0, run.report()
    assert run.count_err(cinit_line("other.service", "stopped")) == 1, run.report()


def test_notify_access_main_ignores_a_childs_ready(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    log = tmp_path / "notify.log"
    script = shell_script(tmp_path / "parent.sh", f"""
        {notify_exec("child", log)} &
        wait
        """)
    run, runtime = booted(boot, tmp_path, {
        "strict.service": f"[Service]\nType=notify\nTimeoutStartSec=3\nExecStart={script}\n",
        "open.service": f"[Service]\nType=notify\nNotifyAccess=all\nExecStart={script}\n",
    })  # fmt: skip
    run.wait_err(cinit_line("open.service", "ready"))
    ignored = r"notification from pid \d+ ignored \(NotifyAccess=main\)"
    run.wait_err(cinit_line("strict.service", ignored))
    run.wait_err(cinit_line("strict.service", r"start-up timed out after 3s"))
    assert run.count_err(cinit_line("strict.service", "ready")) == 0, run.report()
    assert state(cinit_cmd, runtime, "open.service") == "active"
    assert run.terminate() == 0, run.report()


# ---- dependencies ----------------------------------------------------------------------------


def test_binds_to_and_part_of_stop_with_the_unit(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    go = tmp_path / "go"
    brief = shell_script(tmp_path / "brief.sh", f"""
        while [ ! -e {go} ]; do sleep 0.05; done
        """)
    run, runtime = booted(boot, tmp_path, {
        "db.service": "[Service]\nExecStart=/bin/sleep 300\n",
        "bound.service": (
            "[Unit]\nBindsTo=db.service\nAfter=db.service\n[Service]\nExecStart=/bin/sleep 300\n"
        ),
        "part.service": "[Unit]\nPartOf=db.service\n[Service]\nExecStart=/bin/sleep 300\n",
        "brief.service": f"[Service]\nExecStart={brief}\n",
        "tied.service": (
            "[Unit]\nBindsTo=brief.service\nAfter=brief.service\n"
            "[Service]\nExecStart=/bin/sleep 300\n"
        ),
    })  # fmt: skip
    for name in ("db", "bound", "part", "tied"):
        wait_state(cinit_cmd, runtime, f"{name}.service", "active", run)
    go.write_text("")  # brief.service ends by itself: the unit bound to it stops too
    run.wait_err(cinit_line("tied.service", "stopped"), timeout=15)
    assert state(cinit_cmd, runtime, "brief.service") == "exited"
    assert cli(cinit_cmd, runtime, "stop", "part.service").returncode == 0
    wait_state(cinit_cmd, runtime, "part.service", "inactive", run)
    assert state(cinit_cmd, runtime, "db.service") == "active"  # PartOf= is one-way
    assert cli(cinit_cmd, runtime, "start", "part.service").returncode == 0
    wait_state(cinit_cmd, runtime, "part.service", "active", run)
    # A restart is propagated like a stop: what stopped with db.service starts with it.
    names = ("db", "bound", "part")
    before = {name: run.count_err(cinit_line(f"{name}.service", "stopped")) for name in names}
    assert cli(cinit_cmd, runtime, "restart", "db.service").returncode == 0, run.report()
    for name in names:
        wait_state(cinit_cmd, runtime, f"{name}.service", "active", run)
        stops = run.count_err(cinit_line(f"{name}.service", "stopped"))
        assert stops == before[name] + 1, f"{name}: {stops} stops{run.report()}"
    assert cli(cinit_cmd, runtime, "stop", "db.service").returncode == 0
    for name in ("db", "bound", "part"):
        wait_state(cinit_cmd, runtime, f"{name}.service", "inactive", run)
    assert run.terminate() == 0, run.report()


def test_conflicts_and_requisite(boot: Booter, tmp_path: Path, cinit_cmd: list[str]) -> None:
    run, runtime = booted(boot, tmp_path, {
        "a.service": "[Unit]\nConflicts=b.service\n[Service]\nExecStart=/bin/sleep 300\n",
        "b.service": "[Service]\nExecStart=/bin/sleep 300\n",
        "off.service": "[Service]\nExecStart=/bin/sleep 300\n",
        "fix.service": "[Unit]\nOnFailure=off.service\n[Service]\nExecStart=/bin/sleep 300\n",
        "needy.service": (
            "[Unit]\nRequisite=off.service\nAfter=off.service\n"
            "[Service]\nExecStart=/bin/sleep 300\n"
        ),
    })  # fmt: skip
    run.wait_err(r"^cinit: a\.service: not started: it conflicts with b\.service$")
    wait_state(cinit_cmd, runtime, "b.service", "active", run)
    run.wait_err(cinit_line("needy.service", r"failed \(dependency\)"))
    assert state(cinit_cmd, runtime, "off.service") == "inactive"  # Requisite= starts nothing
    assert cli(cinit_cmd, runtime, "start", "a.service").returncode == 0
    wait_state(cinit_cmd, runtime, "a.service", "active", run)
    wait_state(cinit_cmd, runtime, "b.service", "inactive", run)
    assert run.terminate() == 0, run.report()


# ---- Assert*=, ConditionVirtualization= ------------------------------------------------------


def test_a_failed_assert_fails_and_a_container_skips_what_is_not_for_it(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    missing = tmp_path / "missing"
    run, runtime = booted(boot, tmp_path, {
        "asserted.service": (
            f"[Unit]\nAssertPathExists={missing}\n[Service]\nExecStart=/bin/sleep 300\n"
        ),
        "hardware.service": (
            "[Unit]\nConditionVirtualization=!container\n[Service]\nExecStart=/bin/sleep 300\n"
        ),
        "inside.service": (
            "[Unit]\nConditionVirtualization=container\n[Service]\nExecStart=/bin/sleep 300\n"
        ),
    })  # fmt: skip
    run.wait_err(
        cinit_line("asserted.service", rf"failed \(assert\): AssertPathExists={missing} failed")
    )
    skipped = r"skipped \(ConditionVirtualization=!container not met\)"
    run.wait_err(cinit_line("hardware.service", skipped))
    wait_state(cinit_cmd, runtime, "inside.service", "active", run)
    assert state(cinit_cmd, runtime, "asserted.service") == "failed"
    assert state(cinit_cmd, runtime, "hardware.service") == "condition-skipped"
    assert run.count_err(cinit_line("asserted.service", r"started.*")) == 0, run.report()
    assert run.terminate() == 0, run.report()
