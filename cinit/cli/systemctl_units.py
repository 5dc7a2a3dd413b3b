"""systemctl's verbs on the running cinit's units: start, stop, status, show, is-active, ...

Every handler takes the `Call` of `cinit.cli.systemctl` and asks the running cinit over its
control socket (`cinit.io.control_client`: no pyzmq, `systemctl is-active` runs often as a
whole process). Output shapes and exit codes follow systemctl(1): 0 ok; 1 failed; 3 not
active (is-active, status); 4 no such unit (the man page's table: systemd's own start says
5 there, cinit says 4 everywhere).

cinit's unit states map to systemd's ActiveState/SubState (`active_sub`): `waiting`,
`starting` and `running` (not ready yet) are activating; `exited` (finished with success)
is inactive (dead), as a oneshot without RemainAfterExit is in systemd; `auto-restart` is
activating (auto-restart).

cinit not running (no control socket): "cinit is not running ..." on stderr and exit 1,
except where systemctl's answer is a state: is-active prints "inactive" per unit and exits
3, status exits 3, is-failed exits 1, is-system-running prints "offline" and exits 1.
"""

from __future__ import annotations

import os
import sys
import time

from cinit.boot_path import TYPE_CHECKING
from cinit.cli.systemctl import EXIT_FAILED, EXIT_INACTIVE, EXIT_NO_UNIT, EXIT_OK, Call
from cinit.io.control_client import ControlError, request

if TYPE_CHECKING:
    from typing import Any

    Reply = dict[str, Any]
UNIT_SUFFIXES = (
    ".service", ".socket", ".target", ".timer", ".path", ".mount", ".automount",
    ".swap", ".slice", ".scope", ".device",
)  # fmt: skip
ACTION_TIMEOUT = 240.0  # a start waits for ExecStartPre= ... and readiness: systemd's 90s+
QUERY_TIMEOUT = 10.0
GLOB_CHARS = frozenset("*?[")
# systemctl's state markers: up (or on its way), failed, down.
UP_MARK, FAILED_MARK, DOWN_MARK = "\u25cf", "\u00d7", "\u25cb"  # black circle, times, white circle


class NotRunning(Exception):
    """cinit could not be asked (see `ask`); the message is said already."""


# ---- names and requests ---------------------------------------------------------------------


def unit_name(word: str) -> str:
    """systemd's rule: a name without a unit suffix (or a glob) means NAME.service."""
    if word.endswith(UNIT_SUFFIXES) or GLOB_CHARS & set(word):
        return word
    return f"{word}.service"


def ask(call: Call, message: dict[str, Any], timeout: float = QUERY_TIMEOUT) -> Reply:
    """The running cinit's reply to `message`; raises NotRunning after saying why."""
    given = call.text("timeout")
    if given is not None:
        try:
            timeout = float(given)
        except ValueError:
            sys.stderr.write(f"Invalid --timeout: {given}\n")
            raise NotRunning("usage") from None
    try:
        return request(os.path.join(call.runtime_dir, "control"), message, timeout)
    except ControlError as exc:
        sys.stderr.write(f"{exc}\n")
        raise NotRunning(exc.reason) from None


def all_units(call: Call, detail: bool = False) -> Reply:
    """The status of every unit (`detail`: with their definitions too)."""
    return ask(call, {"cmd": "status", "detail": detail, "measure": False})


def one_unit(call: Call, name: str) -> Reply:
    """`name`'s full status (the reply, ok or not: code 4 for an unknown unit)."""
    return ask(call, {"cmd": "status", "unit": name})


def active_sub(status: dict[str, Any]) -> tuple[str, str]:
    """systemd's (ActiveState, SubState) for a unit's status (see the module doc)."""
    state = str(status.get("state", "inactive"))
    kind = str(status.get("kind") or status.get("name", "").rpartition(".")[2])
    if state == "active":
        if kind == "socket":
            return "active", "listening"
        if kind == "service":
            return "active", "running" if status.get("main_pid") else "exited"
        return "active", "active" if kind != "timer" else "waiting"
    table = {
        "inactive": ("inactive", "dead"),
        "condition-skipped": ("inactive", "dead"),
        "exited": ("inactive", "dead"),
        "failed": ("failed", "failed"),
        "waiting": ("activating", "start-pre" if kind == "service" else "start"),
        "starting": ("activating", "start-pre"),
        "running": ("activating", "start"),
        "stopping": ("deactivating", "stop-sigterm" if kind == "service" else "stop"),
        "auto-restart": ("activating", "auto-restart"),
        "reloading": ("reloading", "reload"),  # ExecReload= under way (the reload verb)
    }
    return table.get(state, ("inactive", "dead"))


def _unit_status(reply: Reply, name: str) -> dict[str, Any] | None:
    units: dict[str, dict[str, Any]] = reply.get("units") or {}
    if name in units:
        return units[name]
    return next(iter(units.values()), None) if len(units) == 1 else None


def _not_running_code(reason: str, when_absent: int) -> int:
    return when_absent if reason == "absent" else EXIT_FAILED


# ---- start, stop, restart, try-restart, kill, reset-failed -------------------------------

# systemd's words for a failed job's result (systemctl's "Job for X failed because ...").
JOB_FAILURES = {
    "exit-code": "the control process exited with error code",
    "signal": "a fatal signal was delivered to the control process",
    "core-dump": "a fatal signal was delivered causing the control process to dump core",
    "timeout": "a timeout was exceeded",
    "watchdog": "the service watchdog did not receive a keep-alive signal in time",
    "start-limit-hit": "start of the service was attempted too often",
    "resources": "of unavailable resources or another system error",
    "protocol": "the service did not take the steps required by its unit configuration",
    "dependency": "a dependency failed",
}
VERB_WORDS = {"start": "start", "stop": "stop", "restart": "restart", "try-restart": "restart"}


def _change(call: Call, cmd: str) -> int:
    """start/stop/restart each unit (one request each, in order); systemctl's messages."""
    status = EXIT_OK
    for word in call.units:
        name = unit_name(word)
        message: dict[str, Any] = {"cmd": cmd, "unit": name}
        if call.flag("no_block"):
            message["no_block"] = True
        try:
            reply = ask(call, message, ACTION_TIMEOUT)
        except NotRunning:
            return EXIT_FAILED
        if reply.get("ok"):
            continue
        code = reply.get("code")
        verb = VERB_WORDS.get(call.verb, cmd)
        if code == EXIT_NO_UNIT:
            sys.stderr.write(f"Failed to {verb} {name}: Unit {name} not found.\n")
            status = EXIT_NO_UNIT
            continue
        result = str(reply.get("result") or "")
        if cmd != "stop" and result:
            because = JOB_FAILURES.get(result)
            why = f" because {because}" if because else ""
            sys.stderr.write(
                f"Job for {name} failed{why}.\n"
                f'See "systemctl status {name}" and "journalctl -xeu {name}" for details.\n'
            )
        else:
            sys.stderr.write(f"Failed to {verb} {name}: {reply.get('error', 'failed')}\n")
        status = EXIT_FAILED if status == EXIT_OK else status
    return status


def start(call: Call) -> int:
    """`systemctl start UNIT...`: each started (or failed) before the next is asked."""
    return _change(call, "start")


def stop(call: Call) -> int:
    """`systemctl stop UNIT...`."""
    return _change(call, "stop")


def restart(call: Call) -> int:
    """`systemctl restart UNIT...` (a socket unit too: closed and bound again)."""
    return _change(call, "restart")


def try_restart(call: Call) -> int:
    """`systemctl try-restart UNIT...`: restart those that are active or on their way."""
    try:
        reply = all_units(call)
    except NotRunning:
        return EXIT_FAILED
    units: dict[str, dict[str, Any]] = reply.get("units") or {}
    running = []
    for word in call.units:
        name = unit_name(word)
        status = units.get(name)
        if status is None:
            sys.stderr.write(f"Failed to restart {name}: Unit {name} not found.\n")
            return EXIT_NO_UNIT
        if active_sub(status)[0] in ("active", "activating", "reloading"):
            running.append(name)
    if not running:
        return EXIT_OK
    return restart(Call(call.verb, running, call.parsed))


def parse_signal(text: str) -> int | None:
    """SIGTERM, TERM, term or 15 -> 15; None when it names no signal."""
    import signal

    if text.isdigit():
        number = int(text)
        return number if 0 < number < 65 else None
    upper = text.upper()
    name = upper if upper.startswith("SIG") else f"SIG{upper}"
    found = getattr(signal.Signals, name, None) if name.isidentifier() else None
    return int(found) if found is not None else None


def kill(call: Call) -> int:
    """`systemctl kill [-s SIG] [--kill-whom=main|control|all] UNIT...`."""
    given = call.text("signal") or "SIGTERM"
    signo = parse_signal(given)
    if signo is None:
        return call.fail(f"Failed to parse signal string {given}.")
    whom = call.text("kill_whom") or "all"
    if whom not in ("main", "control", "all"):
        return call.fail(f"Invalid --kill-whom= value: {whom}")
    status = EXIT_OK
    for word in call.units:
        name = unit_name(word)
        try:
            reply = ask(call, {"cmd": "kill", "unit": name, "signal": signo, "whom": whom})
        except NotRunning:
            return EXIT_FAILED
        if reply.get("ok"):
            continue
        if reply.get("code") == EXIT_NO_UNIT:
            sys.stderr.write(f"Failed to kill unit {name}: Unit {name} not loaded.\n")
            status = EXIT_NO_UNIT
        else:
            sys.stderr.write(f"Failed to kill unit {name}: {reply.get('error')}\n")
            status = EXIT_FAILED if status == EXIT_OK else status
    return status


def reset_failed(call: Call) -> int:
    """`systemctl reset-failed [UNIT...]`: failed units go back to inactive."""
    words: list[str | None] = [*call.units] or [None]
    status = EXIT_OK
    for word in words:
        message: dict[str, Any] = {"cmd": "reset-failed"}
        if word is not None:
            message["unit"] = unit_name(word)
        try:
            reply = ask(call, message)
        except NotRunning:
            return EXIT_FAILED
        if reply.get("ok"):
            continue
        name = message.get("unit", "")
        if reply.get("code") == EXIT_NO_UNIT:
            sys.stderr.write(
                f"Failed to reset failed state of unit {name}: Unit {name} not loaded.\n"
            )
            status = EXIT_NO_UNIT
        else:
            sys.stderr.write(f"Failed to reset failed state: {reply.get('error')}\n")
            status = EXIT_FAILED
    return status


# ---- is-active, is-failed, is-system-running -------------------------------------------------


def _states(call: Call) -> list[str] | int:
    """Each unit's ActiveState ("inactive" when unknown, as systemd says), or an exit code."""
    try:
        reply = all_units(call)
    except NotRunning as exc:
        return _not_running_code(str(exc), -1)
    units: dict[str, dict[str, Any]] = reply.get("units") or {}
    found = []
    for word in call.units:
        status = units.get(unit_name(word))
        found.append(active_sub(status)[0] if status is not None else "inactive")
    return found


def is_active(call: Call) -> int:
    """`systemctl is-active UNIT...`: each ActiveState; 0 when one is active, else 3."""
    states = _states(call)
    if isinstance(states, int):
        if states != -1:
            return states
        states = ["inactive"] * len(call.units)  # nothing runs without cinit
    if not call.flag("quiet"):
        sys.stdout.write("".join(f"{state}\n" for state in states))
    return EXIT_OK if "active" in states else EXIT_INACTIVE


def is_failed(call: Call) -> int:
    """`systemctl is-failed UNIT...`: each ActiveState; 0 when one failed, else 1."""
    states = _states(call)
    if isinstance(states, int):
        return EXIT_FAILED
    if not call.flag("quiet"):
        sys.stdout.write("".join(f"{state}\n" for state in states))
    return EXIT_OK if "failed" in states else EXIT_FAILED


def is_system_running(call: Call) -> int:
    """`systemctl is-system-running`: starting, running, degraded or stopping (0: running)."""
    try:
        reply = ask(call, {"cmd": "status", "measure": False})
    except NotRunning:
        state = "offline"
    else:
        state = str(reply.get("system_state", "running"))
    if not call.flag("quiet"):
        sys.stdout.write(f"{state}\n")
    return EXIT_OK if state == "running" else EXIT_FAILED


# ---- environment -----------------------------------------------------------------------------


def show_environment(call: Call) -> int:
    """`systemctl show-environment`: NAME=VALUE lines, sorted."""
    try:
        reply = ask(call, {"cmd": "show-environment"})
    except NotRunning:
        return EXIT_FAILED
    if not reply.get("ok"):
        return call.fail(f"Failed to get environment: {reply.get('error')}")
    environment: dict[str, str] = reply.get("environment") or {}
    sys.stdout.write("".join(f"{key}={environment[key]}\n" for key in sorted(environment)))
    return EXIT_OK


def set_environment(call: Call) -> int:
    """`systemctl set-environment NAME=VALUE...`: for the units started afterwards."""
    assign: dict[str, str] = {}
    for word in call.units:
        name, equal, value = word.partition("=")
        if not equal or not name:
            return call.fail(f"Failed to set environment: '{word}' is not a NAME=VALUE assignment.")
        assign[name] = value
    return _environment(call, {"cmd": "set-environment", "assign": assign}, "set")


def unset_environment(call: Call) -> int:
    """`systemctl unset-environment NAME...`: for the units started afterwards."""
    names = [word.partition("=")[0] for word in call.units]
    return _environment(call, {"cmd": "unset-environment", "names": names}, "unset")


def _environment(call: Call, message: dict[str, Any], verb: str) -> int:
    try:
        reply = ask(call, message)
    except NotRunning:
        return EXIT_FAILED
    if not reply.get("ok"):
        return call.fail(f"Failed to {verb} environment: {reply.get('error')}")
    return EXIT_OK


# ---- status ----------------------------------------------------------------------------------


def timestamp(when: Any) -> str:
    """systemd's form: `Mon 2026-12-07 20:45:01 UTC` ("" for no time)."""
    if not isinstance(when, int | float) or when <= 0:
        return ""
    return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(when))


def ago(when: float) -> str:
    from cinit.tools.durations import elapsed

    return elapsed(time.time() - when)


def size(value: Any) -> str:
    """systemd's byte sizes: 512B, 2.1M, 1.0G."""
    if not isinstance(value, int):
        return ""
    if value < 1024:
        return f"{value}B"
    amount = float(value)
    for suffix in ("K", "M", "G", "T"):
        amount /= 1024
        if amount < 1024 or suffix == "T":
            return f"{amount:.1f}{suffix}"
    return ""


def _exit_words(last: Any) -> str:
    """`code=exited, status=7` or `code=killed, signal=TERM`, as systemctl status says."""
    if not isinstance(last, dict):
        return ""
    sig = last.get("signal")
    if sig:
        return f"code=killed, signal={str(sig).removeprefix('SIG')}"
    code = last.get("code")
    return f"code=exited, status={code}" + ("/SUCCESS" if code == 0 else "")


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return ""
    shown = [w.decode("utf-8", "replace") for w in words if w]
    return " ".join(f'"{w}"' if " " in w or not w else w for w in shown)


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _cgroup_pids(path: str) -> list[int]:
    found: list[int] = []
    for directory, _dirs, _files in os.walk(path):
        try:
            with open(os.path.join(directory, "cgroup.procs")) as f:
                found.extend(int(line) for line in f if line.strip())
        except (OSError, ValueError):
            continue
    return sorted(found)


def _descendants(pid: int) -> list[int]:
    """pid and its descendants, from /proc/PID/task/*/children (no cgroup to read)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(word) for word in f.read().split())
            except (OSError, ValueError):
                continue
    return found


def _tasks_limit(path: str | None) -> str:
    if path is None:
        return ""
    try:
        with open(os.path.join(path, "pids.max")) as f:
            limit = f.read().strip()
    except OSError:
        return ""
    return f" (limit: {limit})" if limit and limit != "max" else ""


def _cgroup_line(path: str) -> str:
    """The cgroup as systemd shows it: below the cgroup2 mount point."""
    for mount in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if path.startswith(mount + "/"):
            return path[len(mount) :]
    return path


def last_lines(call: Call, status: dict[str, Any], count: int) -> list[str]:
    """The unit's last `count` output lines from cinit's log ring (the `logs` request), in
    journalctl's short form as systemctl status shows them (`-o cat`: the text alone;
    `-o json`: one JSON object a line); the status reply's own tail when that fails."""
    if count <= 0:
        return []
    name = str(status.get("name"))
    try:
        reply = ask(call, {"cmd": "logs", "units": [name], "lines": count})
    except NotRunning:
        reply = {}
    found = reply.get("lines") if reply.get("ok") else None
    if not isinstance(found, list):
        return [str(line) for line in status.get("log") or ()][-count:]
    from cinit.cli.logs import json_line, short_line

    form = call.text("output") or "short"
    if form == "cat":
        return [str(line.get("text", "")) for line in found]
    if form == "json":
        return [json_line(line).rstrip("\n") for line in found]
    return [short_line(line).rstrip("\n") for line in found]


def _dropin_lines(paths: list[str]) -> list[str]:
    """`    Drop-In: /dir` then `             └─file` lines, grouped by directory."""
    by_dir: dict[str, list[str]] = {}
    for path in paths:
        directory, _, base = path.rpartition("/")
        by_dir.setdefault(directory, []).append(base)
    lines = []
    for index, (directory, files) in enumerate(by_dir.items()):
        lines.append(("    Drop-In: " if index == 0 else "             ") + directory)
        lines.append("             └─" + ", ".join(files))
    return lines


def status_block(status: dict[str, Any], tail: list[str]) -> str:
    """`systemctl status UNIT`'s block for one unit (see systemctl(1))."""
    name = str(status.get("name"))
    active, sub = active_sub(status)
    dot = FAILED_MARK if active == "failed" else DOWN_MARK if active == "inactive" else UP_MARK
    description = status.get("description") or ""
    out = [f"{dot} {name}" + (f" - {description}" if description else "")]
    path = status.get("fragment_path") or ""
    file_state = status.get("unit_file_state") or ""
    where = "; ".join(part for part in (path, file_state) if part)
    out.append(
        f"     Loaded: {status.get('load_state', 'loaded')}" + (f" ({where})" if where else "")
    )
    out.extend(_dropin_lines(list(status.get("dropins") or ())))
    state_text = f"{active} ({sub})"
    result = status.get("result")
    if active == "failed" and result and result != "success":
        state_text = f"{active} (Result: {result})"
    since = status.get("since")
    if isinstance(since, int | float) and since > 0:
        state_text += f" since {timestamp(since)}; {ago(since)} ago"
    out.append(f"     Active: {state_text}")
    if status.get("state") == "condition-skipped":
        out.append("  Condition: start condition unmet")
    for kind, address in status.get("listen") or ():
        out.append(f"     Listen: {address} ({kind})")
    triggers = status.get("triggers") or status.get("triggered_by") or ()
    if triggers:
        label = "   Triggers" if status.get("triggers") else "TriggeredBy"
        out.append(f"{label}: " + "\n             ".join(f"● {unit}" for unit in triggers))
    pid = status.get("main_pid")
    if pid:
        out.append(f"   Main PID: {pid} ({_process_name(int(pid))})")
    elif status.get("exec_main_pid") and status.get("last_exit"):
        words = _exit_words(status.get("last_exit"))
        out.append(f"   Main PID: {status['exec_main_pid']} ({words})")
    text = status.get("status_text")
    if text:
        out.append(f'     Status: "{text}"')
    cgroup = status.get("cgroup")
    if cgroup:
        pids = _cgroup_pids(str(cgroup))
    elif pid:
        pids = _descendants(int(pid))
    else:
        pids = []
    if pids:
        out.append(f"      Tasks: {len(pids)}{_tasks_limit(cgroup)}")
    if status.get("memory"):
        out.append(f"     Memory: {size(status.get('memory'))}")
    cpu = status.get("cpu")
    if isinstance(cpu, float) and pids:
        out.append(f"        CPU: {round(cpu * 1000)}ms")
    if pids:
        head = f"     CGroup: {_cgroup_line(str(cgroup))}" if cgroup else "     CGroup: (no cgroup)"
        out.append(head)
        for index, each in enumerate(pids):
            branch = "└─" if index == len(pids) - 1 else "├─"
            out.append(f"             {branch}{each} {_command_line(each)}".rstrip())
    if tail:
        out.append("")
        out.extend(tail)
    return "\n".join(out) + "\n"


def _lines_option(call: Call) -> int | None:
    given = call.text("lines")
    if given is None:
        return 10
    try:
        return max(0, int(given))
    except ValueError:
        return None


def status(call: Call) -> int:
    """`systemctl status [UNIT...]`: each unit's block (0 when all active, 3 when one is
    not, 4 when one is unknown); without units, cinit's own short state."""
    count = _lines_option(call)
    if count is None:
        return call.fail(f"Failed to parse lines '{call.text('lines')}'")
    if not call.units:
        return _system_status(call)
    blocks, code = [], EXIT_OK
    for word in call.units:
        name = unit_name(word)
        try:
            reply = one_unit(call, name)
        except NotRunning as exc:
            return _not_running_code(str(exc), EXIT_INACTIVE)
        found = _unit_status(reply, name) if reply.get("ok") else None
        if found is None:
            sys.stderr.write(f"Unit {name} could not be found.\n")
            code = EXIT_NO_UNIT
            continue
        blocks.append(status_block(found, last_lines(call, found, count)))
        if active_sub(found)[0] != "active" and code == EXIT_OK:
            code = EXIT_INACTIVE
    sys.stdout.write("\n".join(blocks))
    return code


def _system_status(call: Call) -> int:
    try:
        reply = all_units(call)
    except NotRunning as exc:
        return _not_running_code(str(exc), EXIT_INACTIVE)
    units: dict[str, dict[str, Any]] = reply.get("units") or {}
    failed = sum(1 for status in units.values() if status.get("state") == "failed")
    state = str(reply.get("system_state", ""))
    boot = reply.get("boot_time")
    lines = [
        f"{FAILED_MARK if state == 'degraded' else UP_MARK} cinit",
        f"      State: {state}",
        f"      Units: {len(units)} loaded",
        f"     Failed: {failed} units",
    ]
    if isinstance(boot, int | float):
        lines.append(f"      Since: {timestamp(boot)}; {ago(boot)} ago")
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


# ---- show ------------------------------------------------------------------------------------

EXEC_CODES = {"exited": 1, "killed": 2, "dumped": 3}  # CLD_* of ExecMainCode


def _joined(values: Any) -> str:
    return " ".join(str(value) for value in values or ())


def unit_properties(status: dict[str, Any]) -> list[tuple[str, str]]:
    """systemd's property names and values for one unit (the order systemctl show uses,
    roughly: identity, state, process, times, dependencies)."""
    active, sub = active_sub(status)
    last = status.get("last_exit") if isinstance(status.get("last_exit"), dict) else {}
    assert isinstance(last, dict)
    if last.get("signal"):
        import signal

        name = str(last["signal"])
        number = getattr(signal.Signals, name, None) if name.startswith("SIG") else None
        exec_code, exec_status = EXEC_CODES["killed"], int(number) if number else 0
    elif last:
        exec_code, exec_status = EXEC_CODES["exited"], int(last.get("code") or 0)
    else:
        exec_code, exec_status = 0, 0
    listen = [f"{address} ({kind})" for kind, address in status.get("listen") or ()]
    props = [
        ("Type", str(status.get("type") or "")),
        ("Restart", str(status.get("restart") or "")),
        ("MainPID", str(status.get("main_pid") or 0)),
        ("ExecMainPID", str(status.get("exec_main_pid") or 0)),
        ("ExecMainCode", str(exec_code)),
        ("ExecMainStatus", str(exec_status)),
        ("StatusText", str(status.get("status_text") or "")),
        ("Result", str(status.get("result") or "success")),
        ("NRestarts", str(status.get("restarts") or 0)),
        ("ControlGroup", _cgroup_line(str(status["cgroup"])) if status.get("cgroup") else ""),
        ("MemoryCurrent", str(status["memory"]) if isinstance(status.get("memory"), int) else ""),
        (
            "CPUUsageNSec",
            str(int(status["cpu"] * 1e9)) if isinstance(status.get("cpu"), float) else "",
        ),
        ("Listen", " ".join(listen)),
        ("Id", str(status.get("name"))),
        ("Names", _joined(status.get("names") or [status.get("name")])),
        ("Requires", _joined(status.get("requires"))),
        ("Wants", _joined(status.get("wants"))),
        ("BindsTo", _joined(status.get("binds_to"))),
        ("PartOf", _joined(status.get("part_of"))),
        ("RequiredBy", _joined(status.get("required_by"))),
        ("WantedBy", _joined(status.get("wanted_by"))),
        ("BoundBy", _joined(status.get("bound_by"))),
        ("Conflicts", _joined(status.get("conflicts"))),
        ("Before", _joined(status.get("before"))),
        ("After", _joined(status.get("after"))),
        ("OnFailure", _joined(status.get("on_failure"))),
        ("Triggers", _joined(status.get("triggers"))),
        ("TriggeredBy", _joined(status.get("triggered_by"))),
        ("Description", str(status.get("description") or status.get("name"))),
        ("LoadState", str(status.get("load_state") or "loaded")),
        ("ActiveState", active),
        ("SubState", sub),
        ("FragmentPath", str(status.get("fragment_path") or "")),
        ("DropInPaths", _joined(status.get("dropins"))),
        ("UnitFileState", str(status.get("unit_file_state") or "")),
        ("StateChangeTimestamp", timestamp(status.get("since"))),
        ("InactiveExitTimestamp", timestamp(status.get("inactive_exit"))),
        ("ActiveEnterTimestamp", timestamp(status.get("active_enter"))),
        ("ActiveExitTimestamp", timestamp(status.get("active_exit"))),
        ("InactiveEnterTimestamp", timestamp(status.get("inactive_enter"))),
    ]
    if status.get("kind") not in ("service", None) and not status.get("type"):
        skip = {"Type", "Restart", "MainPID", "ExecMainPID", "ExecMainCode", "ExecMainStatus"}
        skip |= {"StatusText", "NRestarts"}
        props = [(key, value) for key, value in props if key not in skip]
    return props


def _missing_properties(name: str) -> list[tuple[str, str]]:
    """What systemctl show says of a unit it does not know (exit 0, LoadState=not-found)."""
    return [
        ("Id", name),
        ("Names", name),
        ("Description", name),
        ("LoadState", "not-found"),
        ("ActiveState", "inactive"),
        ("SubState", "dead"),
        ("UnitFileState", ""),
    ]


def manager_properties(reply: Reply) -> list[tuple[str, str]]:
    """`systemctl show` without a unit: a few of the manager's properties."""
    from cinit import __version__

    units: dict[str, dict[str, Any]] = reply.get("units") or {}
    failed = sum(1 for status in units.values() if status.get("state") == "failed")
    return [
        ("Version", f"cinit {__version__}"),
        ("Virtualization", "container"),
        ("SystemState", str(reply.get("system_state", ""))),
        ("NNames", str(len(units))),
        ("NFailedUnits", str(failed)),
        ("NJobs", "0"),
        ("UserspaceTimestamp", timestamp(reply.get("boot_time"))),
    ]


def _print_properties(call: Call, props: list[tuple[str, str]]) -> str:
    wanted = call.listed("property")
    every = call.flag("all")
    value_only = call.flag("value")
    lines = []
    if wanted:  # asked for by name: shown even when empty (an unknown name: nothing)
        by_name = dict(props)
        chosen = [(name, by_name[name]) for name in wanted if name in by_name]
    else:
        chosen = [(name, value) for name, value in props if value or every]
    for name, value in chosen:
        lines.append(value if value_only else f"{name}={value}")
    return "".join(f"{line}\n" for line in lines)


def show(call: Call) -> int:
    """`systemctl show [UNIT...] [-p NAME,...] [--value] [--all]`."""
    if not call.units:
        try:
            reply = all_units(call)
        except NotRunning:
            return EXIT_FAILED
        sys.stdout.write(_print_properties(call, manager_properties(reply)))
        return EXIT_OK
    blocks = []
    for word in call.units:
        name = unit_name(word)
        try:
            reply = one_unit(call, name)
        except NotRunning:
            return EXIT_FAILED
        found = _unit_status(reply, name) if reply.get("ok") else None
        props = unit_properties(found) if found is not None else _missing_properties(name)
        blocks.append(_print_properties(call, props))
    sys.stdout.write("\n".join(blocks))
    return EXIT_OK


# ---- list-units, list-sockets, list-dependencies ---------------------------------------------


def _matches(name: str, patterns: list[str]) -> bool:
    import fnmatch

    return not patterns or any(
        fnmatch.fnmatchcase(name, unit_name(p)) or fnmatch.fnmatchcase(name, p) for p in patterns
    )


def _table(rows: list[list[str]], plain: bool) -> list[str]:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.append(" ".join([*cells, row[-1]]).rstrip())
    return out


LIST_LEGEND = """
LOAD   = Reflects whether the unit definition was properly loaded.
ACTIVE = The high-level unit activation state, i.e. generalization of SUB.
SUB    = The low-level unit activation state, values depend on unit type."""


def list_units(call: Call) -> int:
    """`systemctl list-units [--all] [--type=] [--state=] [PATTERN...]`."""
    try:
        reply = all_units(call)
    except NotRunning:
        return EXIT_FAILED
    units: dict[str, dict[str, Any]] = reply.get("units") or {}
    types = {kind.removeprefix(".") for kind in call.listed("type")}
    states = set(call.listed("state"))
    every = call.flag("all") or bool(states)
    plain = call.flag("plain")
    rows = []
    for name in sorted(units):
        status = units[name]
        active, sub = active_sub(status)
        if types and name.rpartition(".")[2] not in types:
            continue
        if states and not states & {"loaded", active, sub}:
            continue
        if not every and active == "inactive":
            continue
        if not _matches(name, call.units):
            continue
        mark = "" if plain else (UP_MARK if active == "failed" else " ")
        description = str(status.get("description") or name)
        row = [name, "loaded", active, sub, description]
        rows.append([mark, *row] if not plain else row)
    legend = not call.flag("no_legend")
    header = ["UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"]
    table = _table([([" ", *header] if not plain else header), *rows], plain)
    out = table if legend else table[1:]
    if legend:
        out.append(LIST_LEGEND)
        hint = "" if every else " Pass --all to see loaded but inactive units, too."
        out.append(f"{len(rows)} loaded units listed.{hint}")
    sys.stdout.write("".join(f"{line}\n" for line in out) if rows or legend else "")
    return EXIT_OK


def list_sockets(call: Call) -> int:
    """`systemctl list-sockets [--all] [PATTERN...]`: LISTEN UNIT ACTIVATES."""
    try:
        reply = all_units(call, detail=True)
    except NotRunning:
        return EXIT_FAILED
    units: dict[str, dict[str, Any]] = reply.get("units") or {}
    rows = []
    for name in sorted(units):
        status = units[name]
        if not name.endswith(".socket") or not _matches(name, call.units):
            continue
        if not call.flag("all") and active_sub(status)[0] == "inactive":
            continue
        activates = _joined(status.get("triggers"))
        for _kind, address in status.get("listen") or ():
            rows.append([str(address), name, activates])
    rows.sort()
    legend = not call.flag("no_legend")
    table = _table([["LISTEN", "UNIT", "ACTIVATES"], *rows], plain=True) if rows or legend else []
    out = table if legend else table[1:]
    if legend:
        out.append("")
        out.append(f"{len(rows)} sockets listed.")
        if not call.flag("all"):
            out.append("Pass --all to see loaded but inactive sockets, too.")
    sys.stdout.write("".join(f"{line}\n" for line in out))
    return EXIT_OK


FORWARD = ("requires", "requisite", "wants", "binds_to")
REVERSE = ("required_by", "wanted_by", "bound_by")


def list_dependencies(call: Call) -> int:
    """`systemctl list-dependencies [UNIT] [--reverse] [--all] [--plain]`: a tree with a
    state marker per unit; without --all only targets are followed further."""
    try:
        reply = all_units(call, detail=True)
    except NotRunning:
        return EXIT_FAILED
    units: dict[str, dict[str, Any]] = reply.get("units") or {}
    root = unit_name(call.units[0]) if call.units else "default.target"
    relations = REVERSE if call.flag("reverse") else FORWARD
    if root not in units:
        if call.units:
            return call.fail(f"Unit {root} could not be found.", EXIT_NO_UNIT)
        # No default.target (cinit's --units mode boots every unit): the units nothing
        # else pulls in stand under it, as [Install] would have put them.
        tops = [name for name, status in units.items() if not any(status.get(k) for k in REVERSE)]
        units[root] = {
            "name": root,
            "state": "active",
            "wants": [] if call.flag("reverse") else tops,
        }
    every, plain = call.flag("all"), call.flag("plain")
    lines = [root]

    def children(name: str) -> list[str]:
        status = units.get(name) or {}
        return sorted({d for key in relations for d in status.get(key) or () if d in units})

    def walk(name: str, prefix: str, seen: set[str]) -> None:
        below = children(name)
        for index, child in enumerate(below):
            last = index == len(below) - 1
            active = active_sub(units[child])[0]
            mark = {"active": UP_MARK, "failed": FAILED_MARK}.get(active, DOWN_MARK)
            if plain:
                lines.append(f"{prefix}  {child}")
            else:
                lines.append(f"{mark} {prefix}{'└─' if last else '├─'}{child}")
            deeper = every or child.endswith(".target")
            if deeper and child not in seen:
                inner = prefix + ("  " if plain else ("  " if last else "│ "))
                walk(child, inner, seen | {child})

    walk(root, "", {root})
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return EXIT_OK
