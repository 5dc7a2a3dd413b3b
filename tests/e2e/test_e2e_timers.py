"""Issue 17's `.timer` units on real processes, cinit as PID 1 in a PID namespace.

Runs are counted from files the services append to; counts are asserted as ranges (the
machine is loaded: no timed assertions). A wall-clock jump is not done here (setting the
clock would change the host's): tests/machines/test_timer_machine.py proves it with an
injected clock.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Boot, shell_script, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(90)]

Booter = Callable[..., Boot]


def runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def trace_events(trace: Path, unit: str) -> list[dict[str, Any]]:
    if not trace.exists():
        return []
    records = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("unit") == unit]


def trace_env(trace: Path) -> dict[str, str]:
    return {"CONTAINER_INIT_TRACE": "1", "CONTAINER_INIT_TRACE_FILE": str(trace)}


def oneshot(script: Path) -> str:
    return f"[Service]\nType=oneshot\nExecStart={script}\n"


def boot_clock_timer(
    boot: Booter, tmp_path: Path, name: str, when: str
) -> tuple[Boot, Path, Path]:
    """Boot `name`.timer (OnCalendar=`when`, AccuracySec=1ms) and its oneshot, which appends
    its own clock to a log; the run, the log and the JSONL trace."""
    log = tmp_path / f"{name}.log"
    script = shell_script(tmp_path / f"{name}.sh", f"date +%s.%N >> {log}\n")
    units = {
        f"{name}.timer": f"[Timer]\nOnCalendar={when}\nAccuracySec=1ms\n",
        f"{name}.service": oneshot(script),
    }
    trace = tmp_path / "trace.jsonl"
    return boot(units, env=trace_env(trace)), log, trace


def test_a_timer_every_2s_fires_its_oneshot_about_5_times_in_10s(
    boot: Booter, tmp_path: Path
) -> None:
    run, log, trace = boot_clock_timer(boot, tmp_path, "tick", "*:*:0/2")
    # The service is not started at boot: the first run is the timer's.
    wait_until(lambda: runs(log) >= 1, 10, "the first run" + run.report())
    begun = time.monotonic()
    first = runs(log)
    while time.monotonic() - begun < 10:
        time.sleep(0.1)
    count = runs(log) - first
    assert 4 <= count <= 6, (count, log.read_text(), run.report())
    armed = [e for e in trace_events(trace, "tick.timer") if e["event"] == "timer-armed"]
    assert armed and "next_elapse_iso" in armed[-1] and armed[-1]["next_elapse"] > 0
    assert run.terminate() == 0


def test_on_boot_and_on_unit_active_fire_on_schedule(boot: Booter, tmp_path: Path) -> None:
    log = tmp_path / "beat.log"
    script = shell_script(tmp_path / "beat.sh", f"date +%s.%N >> {log}\n")
    units = {
        "beat.timer": "[Timer]\nOnBootSec=1s\nOnUnitActiveSec=2s\nAccuracySec=1ms\n",
        "beat.service": oneshot(script),
    }
    run = boot(units)
    wait_until(lambda: runs(log) >= 1, 10, "the boot run" + run.report())
    first = runs(log)
    begun = time.monotonic()
    while time.monotonic() - begun < 7:
        time.sleep(0.1)
    count = runs(log) - first
    assert 2 <= count <= 4, (count, log.read_text())  # every 2 s: ~3.5 in 7 s
    stamps = [float(line) for line in log.read_text().split()]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap > 1.5 for gap in gaps), gaps  # OnUnitActiveSec= spaces them
    assert run.terminate() == 0


def test_a_long_running_service_is_skipped_not_doubled(boot: Booter, tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    script = shell_script(tmp_path / "long.sh", f"echo start >> {log}\nexec sleep 30\n")
    units = {
        "long.timer": "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n",
        "long.service": f"[Service]\nExecStart={script}\n",
    }
    trace = tmp_path / "trace.jsonl"
    run = boot(units, env=trace_env(trace))
    wait_until(lambda: runs(log) >= 1, 10, "the first run" + run.report())

    def skipped() -> bool:
        return any(e["event"] == "timer-skipped" for e in trace_events(trace, "long.timer"))

    wait_until(skipped, 15, "a timer-skipped event" + run.report())
    assert runs(log) == 1  # still the one run: no second start
    assert run.terminate() == 0


def test_persistent_catches_up_a_run_missed_while_cinit_was_down(
    boot: Booter, tmp_path: Path
) -> None:
    log = tmp_path / "daily.log"
    script = shell_script(tmp_path / "daily.sh", f"date +%s >> {log}\n")
    state = tmp_path / "state"
    state.mkdir()
    stamp = state / "stamp-daily.timer"
    stamp.touch()
    two_days_ago = time.time() - 2 * 86400
    os.utime(stamp, (two_days_ago, two_days_ago))  # an earlier run's last trigger
    units = {
        "daily.timer": "[Timer]\nOnCalendar=daily\nPersistent=yes\nAccuracySec=1ms\n",
        "daily.service": oneshot(script),
    }
    run = boot(units, options=["--timer-state-dir", str(state)])
    wait_until(lambda: runs(log) >= 1, 10, "the missed run, at once" + run.report())
    wait_until(lambda: stamp.stat().st_mtime > time.time() - 60, 5, "the stamp updated")
    time.sleep(2)
    assert runs(log) == 1  # once, not once per missed day
    assert run.terminate() == 0


def test_without_a_stamp_a_persistent_daily_timer_waits(boot: Booter, tmp_path: Path) -> None:
    log = tmp_path / "daily.log"
    script = shell_script(tmp_path / "daily.sh", f"date +%s >> {log}\n")
    units = {
        "daily.timer": "[Timer]\nOnCalendar=daily\nPersistent=yes\nAccuracySec=1ms\n",
        "daily.service": oneshot(script),
        "mark.service": "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    }
    run = boot(units, options=["--timer-state-dir", str(tmp_path / "state")])
    time.sleep(3)  # the other boot unit ran; the timer waits for midnight
    assert runs(log) == 0
    assert run.terminate() == 0


def test_a_failing_service_does_not_stop_its_timer(boot: Booter, tmp_path: Path) -> None:
    log = tmp_path / "fail.log"
    script = shell_script(tmp_path / "fail.sh", f"date +%s >> {log}\nexit 3\n")
    units = {
        "fail.timer": "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n",
        "fail.service": oneshot(script),
    }
    run = boot(units)
    wait_until(lambda: runs(log) >= 3, 15, "three failing runs" + run.report())
    assert run.terminate() == 0


def cli(cinit_cmd: list[str], runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    argv = [*cinit_cmd, *args, "--runtime-dir", str(runtime)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)


def test_status_shows_the_next_elapse_and_stop_disarms(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    log = tmp_path / "tick.log"
    script = shell_script(tmp_path / "tick.sh", f"date +%s.%N >> {log}\n")
    units = {
        "tick.timer": "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n",
        "tick.service": oneshot(script),
    }
    run = boot(units)
    runtime = tmp_path / "boot" / "run"
    wait_until(lambda: runs(log) >= 1, 10, "the first run" + run.report())
    wait_until(lambda: (runtime / "control").exists(), 10, "the control socket")

    def timer_status() -> dict[str, Any]:
        done = cli(cinit_cmd, runtime, "status", "--json")
        assert done.returncode in (0, 3), done.stderr
        status: dict[str, Any] = json.loads(done.stdout)["units"]["tick.timer"]
        return status

    wait_until(lambda: timer_status().get("last_trigger") is not None, 10, "a last trigger")
    status = timer_status()
    assert status["state"] == "active" and status["next_elapse"] > time.time() - 1
    assert status["triggers"] == "tick.service"
    shown = cli(cinit_cmd, runtime, "status", "tick.timer")
    assert "Trigger: " in shown.stdout and "Triggers: tick.service" in shown.stdout, shown
    listed = cli(cinit_cmd, runtime, "systemctl", "list-timers")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NEXT", "LEFT", "LAST", "PASSED", "UNIT", "ACTIVATES"]
    assert lines[1].endswith("tick.timer tick.service") and " left " in lines[1], listed.stdout
    assert "1 timer listed." in listed.stdout
    stopped = cli(cinit_cmd, runtime, "stop", "tick.timer")
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: timer_status()["state"] == "inactive", 10, "tick.timer inactive")
    assert timer_status().get("next_elapse") is None
    after = runs(log)
    time.sleep(4.5)  # two elapses' worth: none fires
    assert runs(log) <= after + 1  # one may have been on its way as the stop came
    assert run.terminate() == 0


def test_an_unwritable_state_dir_is_one_warning_and_the_timer_runs_on(
    boot: Booter, tmp_path: Path
) -> None:
    log = tmp_path / "p.log"
    script = shell_script(tmp_path / "p.sh", f"date +%s >> {log}\n")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # as a read-only root: the state directory cannot be made
    units = {
        "p.timer": "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\nPersistent=yes\n",
        "p.service": oneshot(script),
    }
    run = boot(units, options=["--timer-state-dir", str(blocker / "timers")])
    wait_until(lambda: runs(log) >= 3, 15, "three runs" + run.report())
    assert run.terminate() == 0
    assert run.count_err(r"cannot write the Persistent= stamp") == 1, run.stderr()


@pytest.mark.skipif(shutil.which("systemctl") is None, reason="systemctl --root makes the links")
def test_under_systemd_an_enabled_timer_runs_and_a_disabled_one_does_not(
    boot: Booter, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    lib = root / "usr/lib/systemd/system"
    lib.mkdir(parents=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")
    logs = {name: tmp_path / f"{name}.log" for name in ("tick", "idle")}
    for name, log in logs.items():
        script = shell_script(tmp_path / f"{name}.sh", f"date +%s >> {log}\n")
        (lib / f"{name}.service").write_text(oneshot(script))
    (lib / "tick.timer").write_text(
        "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n\n[Install]\nWantedBy=timers.target\n"
    )
    (lib / "idle.timer").write_text(  # would run at once if it started
        "[Timer]\nOnBootSec=0\nAccuracySec=1ms\n\n[Install]\nWantedBy=timers.target\n"
    )
    subprocess.run(
        ["systemctl", f"--root={root}", "enable", "tick.timer"], check=True, capture_output=True
    )
    run = boot({}, options=["--systemd", "--systemd-root", str(root)])
    wait_until(lambda: runs(logs["tick"]) >= 2, 15, "two runs of tick" + run.report())
    assert runs(logs["idle"]) == 0  # idle.timer is loaded, not enabled: not started
    assert run.terminate() == 0


def test_a_timer_whose_condition_fails_is_skipped(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    log = tmp_path / "c.log"
    script = shell_script(tmp_path / "c.sh", f"date +%s >> {log}\n")
    units = {
        "c.timer": (
            f"[Unit]\nConditionPathExists={tmp_path}/absent\n"
            "[Timer]\nOnBootSec=0\nAccuracySec=1ms\n"
        ),
        "c.service": oneshot(script),
    }
    run = boot(units)
    run.wait_err(r"c\.timer: skipped \(ConditionPathExists=.*absent not met\)", 10)
    time.sleep(1)
    assert runs(log) == 0
    assert run.terminate() == 0


def test_a_timer_added_by_a_daemon_reload_can_be_started(
    boot: Booter, tmp_path: Path, cinit_cmd: list[str]
) -> None:
    log = tmp_path / "late.log"
    script = shell_script(tmp_path / "late.sh", f"date +%s >> {log}\n")
    run = boot({"plain.service": "[Service]\nExecStart=/bin/sleep 60\n"})
    runtime = tmp_path / "boot" / "run"
    wait_until(lambda: cli(cinit_cmd, runtime, "is-ready").returncode == 0, 20, "the boot")
    units = tmp_path / "boot" / "units"
    (units / "late.service").write_text(oneshot(script))
    (units / "late.timer").write_text("[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n")
    reloaded = cli(cinit_cmd, runtime, "reload")
    assert reloaded.returncode == 0, reloaded.stderr
    started = cli(cinit_cmd, runtime, "start", "late.timer")
    assert started.returncode == 0, started.stderr
    wait_until(lambda: runs(log) >= 2, 15, "two runs of the added timer" + run.report())
    assert run.terminate() == 0


def test_a_timers_service_is_readied_ahead_and_runs_at_the_elapse(
    boot: Booter, tmp_path: Path
) -> None:
    """The start of a timer's service is readied before the elapse (the process exists
    already, set up in the unit's cgroup, and execs at the elapse): the process that runs
    the command is the one cinit said it readied, forked well before the command ran, and
    it is PID 1's child."""
    log = tmp_path / "ahead.log"
    script = shell_script(
        tmp_path / "ahead.sh",
        # its pid, its start (clock ticks since boot), the uptime now, its parent, cgroup
        f"echo $$ $(cut -d' ' -f22 /proc/$$/stat) $(cut -d' ' -f1 /proc/uptime) $PPID "
        f"$(grep ^0:: /proc/self/cgroup) >> {log}\n",
    )
    units = {
        "ahead.timer": "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n",
        "ahead.service": oneshot(script),
    }
    run = boot(units, env={"CINIT_VERBOSE": "1"})
    wait_until(lambda: runs(log) >= 3, 15, "three runs" + run.report())
    assert run.terminate() == 0
    readied = set(
        re.findall(r"ahead.service: its start is readied ahead \(pid (\d+)\)", run.stderr())
    )
    ticks = os.sysconf("SC_CLK_TCK")
    ages = []
    used = 0
    for line in log.read_text().splitlines():
        pid, started, uptime, parent, cgroup = line.split()
        used += pid in readied
        ages.append(float(uptime) - int(started) / ticks)
        assert parent == "1", line  # cinit's own child, though a helper forked it
        assert cgroup.endswith("/ahead.service"), line
    # Forked ~250 ms ahead; a fresh fork at the elapse would be ~0 s old when it runs.
    assert sum(age >= 0.1 for age in ages) >= 2, (ages, run.report())
    assert used >= 2, (used, readied, log.read_text(), run.report())


def test_a_precise_elapse_is_decided_ahead_but_its_service_never_runs_before_it(
    boot: Booter, tmp_path: Path
) -> None:
    """AccuracySec=1ms: cinit decides the elapse a moment ahead (its timer-elapsed event is
    published before the instant it names), and the service's process still runs only
    once the elapse came (its own clock is never before the elapse it ran for)."""
    run, log, trace = boot_clock_timer(boot, tmp_path, "exact", "*:*:0/1")
    wait_until(lambda: runs(log) >= 4, 15, "four runs" + run.report())
    assert run.terminate() == 0
    records = trace_events(trace, "exact.timer")
    elapses = sorted({float(r["next_elapse"]) for r in records if r["event"] == "timer-armed"})
    for word in log.read_text().split():
        clock = float(word)
        nearest = min(elapses, key=lambda elapse: abs(elapse - clock))
        assert clock >= nearest, (clock, nearest, elapses)  # never before its elapse
    elapsed = [r for r in records if r["event"] == "timer-elapsed"]
    assert any(r["time"] < r["at"] for r in elapsed), elapsed  # published ahead of it


def test_a_start_that_cannot_be_built_is_said_once_per_elapse_not_also_when_readied(
    boot: Booter, tmp_path: Path
) -> None:
    """The start readied ahead meets the missing EnvironmentFile= 250 ms before the elapse
    and says nothing; the start itself says it: one line per elapse."""
    missing = tmp_path / "missing.env"
    units = {
        "env.timer": "[Timer]\nOnCalendar=*:*:0/1\nAccuracySec=1ms\n",
        "env.service": f"[Service]\nType=oneshot\nEnvironmentFile={missing}\nExecStart=/bin/true\n",
    }
    trace = tmp_path / "trace.jsonl"
    run = boot(units, env=trace_env(trace))

    def elapsed() -> int:
        return sum(e["event"] == "timer-elapsed" for e in trace_events(trace, "env.timer"))

    wait_until(lambda: elapsed() >= 3, 15, "three elapses" + run.report())
    assert run.terminate() == 0
    said = run.stderr().count(f"EnvironmentFile={missing}")
    assert 1 <= said <= elapsed(), (said, elapsed(), run.stderr())
