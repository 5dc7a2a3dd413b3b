"""User= resolved at start time: a user a boot oneshot creates, and the seed's myimage pair.

cinit runs in a private mount namespace where copies of /etc/passwd and /etc/group are
bind-mounted over the real ones; the oneshot appends to the copies, never the host's files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_support import SEED, Boot, cinit_line, shell_script, wait_until

pytestmark = [pytest.mark.pid1, pytest.mark.timeout(60)]

Booter = Callable[..., Boot]  # the `boot` fixture (tests/e2e/conftest.py)

USER, UID = "appuser", 4242
PASSWD_LINE = f"{USER}:x:{UID}:{UID}::/tmp:/bin/sh"
GROUP_LINE = f"{USER}:x:{UID}:"


@pytest.fixture
def host_user_db_untouched() -> Iterator[None]:
    """Skip when the host already knows the test user; check its files are unchanged after."""
    before = {name: Path(f"/etc/{name}").read_bytes() for name in ("passwd", "group")}
    for text in before.values():
        for line in text.decode(errors="replace").splitlines():
            fields = line.split(":")
            if fields[0] == USER or (len(fields) > 2 and fields[2] == str(UID)):
                pytest.skip(f"the host already has {USER!r} or id {UID}: {line!r}")
    yield
    after = {name: Path(f"/etc/{name}").read_bytes() for name in ("passwd", "group")}
    assert after == before, "the host's /etc/passwd or /etc/group changed"


def user_creating_oneshot(script_dir: Path, extra_unit: str = "") -> str:
    make_user = shell_script(script_dir / "make-user.sh", f"""
        echo '{PASSWD_LINE}' >> /etc/passwd
        echo '{GROUP_LINE}' >> /etc/group
        """)
    return f"""
        [Unit]
        {extra_unit}

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart={make_user}
        """


def writable_dir(path: Path) -> Path:
    path.mkdir()
    path.chmod(0o777)
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.usefixtures("host_user_db_untouched")
def test_user_created_by_a_boot_oneshot_is_used_by_user_in_a_later_unit(
    boot: Booter, tmp_path: Path, shared_dir: Path
) -> None:
    marks = writable_dir(shared_dir / "marks")
    report = shell_script(shared_dir / "report-id.sh", f"""
        echo "$(id -u) $(id -g) $(id -G)" > {marks}/id
        """)
    run = boot({
        "make-user.service": user_creating_oneshot(tmp_path),
        "use-user.service": f"""
            [Unit]
            After=make-user.service
            Requires=make-user.service

            [Service]
            Type=oneshot
            RemainAfterExit=yes
            User={USER}
            ExecStart={report}
            """,
    }, user_db=True)
    run.wait_err(cinit_line("use-user.service", "ready"), timeout=20)
    assert lines(marks / "id") == [f"{UID} {UID} {UID}"], run.report()
    # The oneshot wrote the private copy the namespace saw.
    assert PASSWD_LINE in lines(tmp_path / "etc" / "passwd")
    assert run.terminate() == 0, run.report()


@pytest.mark.usefixtures("host_user_db_untouched")
def test_seed_myimage_init_and_app_run_as_the_image_user(
    boot: Booter, tmp_path: Path, shared_dir: Path
) -> None:
    marks = writable_dir(shared_dir / "marks")
    home = shared_dir / "home"
    home.mkdir()
    os.chown(home, UID, UID)
    home.chmod(0o755)
    bin_dir = shared_dir / "bin"
    shell_script(bin_dir / "myimage-init", f"""
        echo "init|$(id -u)|$(date +%s%N)" >> {marks}/init.log
        """)
    shell_script(bin_dir / "myimage-app", f"""
        echo "app|$(id -u)|$(pwd)|$*|$(date +%s%N)" >> {marks}/app.log
        exec sleep 60
        """)
    bin_dir.chmod(0o755)
    core = {
        name: (SEED / "units" / name).read_text()
        for name in ("session-setup.service", "window-manager.service")
    }
    # The user exists before either base unit starts (Before= is After= reversed).
    core["make-user.service"] = user_creating_oneshot(
        tmp_path, "Before=session-setup.service window-manager.service"
    )
    drop_ins = {
        name: (SEED / "container-init.d" / name).read_text()
        for name in ("myimage-init.service", "myimage-app.service")
    }
    run = boot(
        core, drop_ins, user_db=True,
        env={"APP_USER": USER, "APP_HOME": str(home)},
        binds=[(bin_dir, "/usr/local/bin")],
    )
    run.wait_err(cinit_line("myimage-init.service", "ready"), timeout=20)
    run.wait_err(cinit_line("myimage-app.service", r"started \(pid \d+\)"), timeout=20)
    wait_until(lambda: bool(lines(marks / "app.log")), 10, "myimage-app to run")
    init_runs = [line.split("|") for line in lines(marks / "init.log")]
    assert [fields[1] for fields in init_runs] == [str(UID)], f"init runs: {init_runs}"
    app_runs = [line.split("|") for line in lines(marks / "app.log")]
    assert [fields[1:4] for fields in app_runs] == [
        [str(UID), str(home), "--listen 127.0.0.1:5000"]
    ], f"app runs: {app_runs}{run.report()}"
    assert run.alive()
    assert run.terminate() == 0, run.report()
    # Stopped by cinit, so not a failure and not restarted.
    assert len(lines(marks / "app.log")) == 1
    assert run.count_err(cinit_line("myimage-app.service", r"failed \(.*\)")) == 0, run.report()
