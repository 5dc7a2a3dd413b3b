"""What runs before cinit's Python blocks the signals it owns.

As PID 1, a signal that is neither blocked nor handled is discarded by the kernel, so the
earlier the owned signals are blocked after exec, the fewer are lost (bench/signal_window.py
measures the window). The standalone build's `cinit` is a small C launcher
(packaging/launcher.c) that blocks them and execs the PyInstaller bootloader in libexec/;
the pip-installed script blocks them in its first statement, before importing cinit. Both
must block exactly cinit.io.signal_policy.OWNED_SIGNALS. That cinit takes a signal that was
already pending at its exec is tested in tests/pid1 (test_shutdown_signal_pending_at_exec).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cinit.signal_policy import OWNED_SIGNALS

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"

pytestmark = pytest.mark.timeout(120)

# Stands in for the bootloader (libexec/cinit) or for the cinit package: reports the signal
# mask it was started with, and its argv.
REPORT_MASK = (
    "import _signal, sys\n"
    "blocked = sorted(int(s) for s in _signal.pthread_sigmask(_signal.SIG_BLOCK, []))\n"
    "print(' '.join(map(str, blocked)))\n"
    "print('\\0'.join(sys.argv))\n"
)
OWNED = " ".join(str(int(s)) for s in sorted(OWNED_SIGNALS))


@pytest.fixture(scope="module", params=["nolibc", "libc"])
def launcher(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The launcher built as the standalone build builds it, into dist/cinit: first
    launcher-nolibc.c (raw system calls, x86_64/aarch64), then launcher.c (the fallback)."""
    dist = tmp_path_factory.mktemp("launcher") / "dist"
    dist.mkdir()
    built = subprocess.run(
        [str(PACKAGING / "build-launcher.sh"), str(dist / "cinit")],
        capture_output=True, text=True, timeout=100,
        env={**os.environ, "CINIT_LAUNCHER": request.param},
    )  # fmt: skip
    if built.returncode == 3:
        pytest.skip(f"no C compiler to build the launcher: {built.stderr.strip()}")
    assert built.returncode == 0, built.stderr
    return dist / "cinit"


def install_probe(bootloader: Path) -> None:
    bootloader.parent.mkdir(exist_ok=True)
    bootloader.write_text(f"#!{sys.executable}\n{REPORT_MASK}")
    bootloader.chmod(0o755)


def test_launcher_blocks_the_owned_signals_and_execs_the_bootloader(launcher: Path) -> None:
    install_probe(launcher.parent / "libexec" / "cinit")
    done = subprocess.run(
        [str(launcher), "--", "/bin/echo", "two words"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    mask, argv = done.stdout.splitlines()
    assert mask == OWNED
    # The probe is a script: the kernel runs it as `python PROBE ARGS`; our ARGS stay as given.
    assert argv.split("\0")[1:] == ["--", "/bin/echo", "two words"]


def test_launcher_run_through_a_symlink_finds_its_bootloader(
    launcher: Path, tmp_path: Path
) -> None:
    install_probe(launcher.parent / "libexec" / "cinit")
    on_path = tmp_path / "bin" / "cinit"  # as /usr/local/bin/cinit -> /opt/cinit/cinit
    on_path.parent.mkdir()
    on_path.symlink_to(launcher)
    done = subprocess.run(
        ["cinit", "status"], capture_output=True, text=True, timeout=30,
        env={**os.environ, "PATH": str(on_path.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == OWNED


def test_launcher_without_proc_follows_the_links_of_its_argv0(
    launcher: Path, tmp_path: Path
) -> None:
    # A chroot without /proc: no /proc/self/exe, so the path it was run by is followed, link
    # by link (an absolute one, then a relative one), to the launcher's own directory.
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to hide /proc")
    install_probe(launcher.parent / "libexec" / "cinit")
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt" / "cinit").symlink_to(launcher)  # absolute
    on_path = tmp_path / "bin" / "cinit"
    on_path.parent.mkdir()
    on_path.symlink_to("../opt/cinit")  # relative
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
         'mount -t tmpfs none /proc && exec "$1" status', "sh", str(on_path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == OWNED


def test_launcher_copied_alone_says_to_copy_the_directory(
    tmp_path: Path, launcher: Path
) -> None:
    # What `cp bin/cinit /usr/local/bin/` does: cp follows the symlink, copies the launcher.
    alone = tmp_path / "cinit"
    shutil.copy(launcher, alone)
    done = subprocess.run([str(alone), "status"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 127
    first, *rest = done.stderr.splitlines()
    assert first.startswith(f"cinit: {tmp_path}/libexec/cinit is missing: ")
    advice = " ".join(rest)
    assert "Copy the whole directory" in advice
    assert "ln -s /opt/cinit/cinit /usr/local/bin/cinit" in advice
    assert "Traceback" not in done.stderr


def test_pip_script_blocks_the_owned_signals_before_importing_cinit(tmp_path: Path) -> None:
    # A stand-in cinit package first on the path: it reports the mask at the moment the
    # script imports cinit.cli (the real import takes a few ms, signals lost meanwhile).
    fake = tmp_path / "cinit" / "cli"
    fake.mkdir(parents=True)
    (tmp_path / "cinit" / "__init__.py").write_text("")
    (fake / "__init__.py").write_text(
        REPORT_MASK.replace("print(", "REPORT.append(")
        .replace("import _signal, sys\n", "import _signal, sys\nREPORT = []\n")
        + "def main() -> int:\n    print(*REPORT, sep='\\n')\n    return 0\n"
    )
    done = subprocess.run(
        [sys.executable, str(PACKAGING / "scripts" / "cinit"), "status"],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == OWNED


def test_standalone_build_runs_its_launcher_first() -> None:
    bundle = ROOT / "bin" / "cinit.dist"
    if not (bundle / "libexec" / "cinit").exists():
        pytest.skip("no standalone build in bin/ (make standalone)")
    launcher = bundle / "cinit"
    if launcher.is_symlink():
        pytest.skip("bin/cinit was built without a C compiler: no launcher")
    assert launcher.read_bytes() != (bundle / "libexec" / "cinit").read_bytes()
    done = subprocess.run([str(ROOT / "bin" / "cinit"), "version"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("cinit "), done.stderr
