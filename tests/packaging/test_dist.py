"""The release files of `make dist` (packaging/make-dist.sh), as a user takes them.

- The tarball unpacks to opt/cinit/... and usr/local/bin/{cinit,systemctl,journalctl}
  -> /opt/cinit/cinit: unpacked at / (here: bound over /opt in a mount namespace of its
  own) it runs.
- The wheel installs offline (`pip install --no-index`) into a fresh venv, with cinit's
  dependencies already there, and gives `cinit`, not `systemctl`/`journalctl`; the extra
  `cinit[systemctl]` adds those two (packaging/systemctl-shim).
- The sdist holds what a build from it needs; SHA256SUMS checks every file.
- The standalone `bin/cinit` copied on its own says to copy the directory.

Needs a standalone build (`make standalone`; skipped otherwise).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "bin" / "cinit.dist"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
LINKS = ("cinit", "systemctl", "journalctl")

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (BUNDLE / "libexec" / "cinit").exists():
        pytest.skip("no standalone build in bin/ (make standalone)")
    if shutil.which("tar") is None or shutil.which("sha256sum") is None:
        pytest.skip("needs tar and sha256sum")
    out = tmp_path_factory.mktemp("dist") / "dist"
    made = subprocess.run(
        [str(ROOT / "packaging" / "make-dist.sh"), sys.executable, str(BUNDLE), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    return out


def tarball(dist: Path) -> Path:
    (found,) = dist.glob(f"cinit-{VERSION}-linux-*.tar.gz")
    return found


def test_release_files_and_their_checksums(dist: Path) -> None:
    names = sorted(p.name for p in dist.iterdir())
    assert names == sorted([
        "SHA256SUMS", tarball(dist).name, f"cinit-{VERSION}-py3-none-any.whl",
        f"cinit-{VERSION}.tar.gz", f"cinit_systemctl-{VERSION}-py3-none-any.whl",
    ])  # fmt: skip
    sums = {}
    for line in (dist / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    assert set(sums) == set(names) - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest, name


def test_tarball_holds_the_bundle_under_opt_and_the_links(dist: Path) -> None:
    with tarfile.open(tarball(dist)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert all(name.startswith(("opt/", "usr/")) or name in ("opt", "usr") for name in members)
    assert members["opt/cinit/cinit"].isfile() and members["opt/cinit/cinit"].mode & 0o111
    assert members["opt/cinit/libexec/cinit"].isfile()
    for name in LINKS:
        link = members[f"usr/local/bin/{name}"]
        assert link.issym() and link.linkname == "/opt/cinit/cinit", name
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    # The same files as the build, nothing more
    bundle = {p.relative_to(BUNDLE).as_posix() for p in BUNDLE.rglob("*")}
    shipped = {n.removeprefix("opt/cinit/") for n in members if n.startswith("opt/cinit/")}
    assert shipped == bundle


def test_tarball_unpacked_at_root_runs(dist: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to put the tarball's /opt in place")
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(tarball(dist)) as tar:
        tar.extractall(root, filter="tar")
    # /opt/cinit of the tarball, in a mount namespace of its own: the links are absolute.
    # cinit answers to the name it is run under: the links reach systemctl's and
    # journalctl's own help (through the launcher and the bootloader, argv[0] intact).
    script = (
        'mount -t tmpfs none /opt && mkdir /opt/cinit && mount --bind "$1/opt/cinit" '
        '/opt/cinit && "$1/usr/local/bin/cinit" version && "$1/usr/local/bin/systemctl" '
        '--help | head -n 1 && "$1/usr/local/bin/journalctl" --help | head -n 1'
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh",
         str(root)],
        capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"cinit {VERSION}", done.stdout
    assert lines[1].startswith("usage: systemctl"), done.stdout
    assert lines[2].startswith("journalctl"), done.stdout


def _requirement_names(dist: metadata.Distribution) -> list[str]:
    names = []
    for requirement in dist.requires or []:
        if "extra ==" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", requirement)
        if match:
            names.append(match.group(0))
    return names


def installed_dependencies(into: Path) -> None:
    """Symlink cinit's installed dependencies (this interpreter's, transitively) into
    `into`: a venv given it on its path has them installed, without any package index."""
    seen: set[str] = set()
    pending = _requirement_names(metadata.distribution("cinit"))
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            found = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for other Pythons only
        site = Path(str(found.locate_file("")))
        for top in {Path(str(f)).parts[0] for f in found.files or []}:
            if top != ".." and not (into / top).exists() and (site / top).exists():
                (into / top).symlink_to(site / top)
        pending += _requirement_names(found)


def test_the_wheel_installs_offline_and_the_extra_adds_systemctl(
    dist: Path, tmp_path: Path
) -> None:
    deps = tmp_path / "deps"
    deps.mkdir()
    installed_dependencies(deps)
    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, timeout=240)  # fmt: skip
    assert made.returncode == 0, made.stderr
    (site,) = venv.glob("lib/python3*/site-packages")
    (site / "cinit-test-deps.pth").write_text(f"{deps}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "CINIT_"))}
    env["PIP_CONFIG_FILE"] = os.devnull  # no index, no find-links of this machine's config
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index"]
    wheel = dist / f"cinit-{VERSION}-py3-none-any.whl"
    done = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=240,
                          env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    version = subprocess.run([str(venv / "bin" / "cinit"), "version"], capture_output=True,
                             text=True, timeout=60, cwd="/", env=env)  # fmt: skip
    assert version.stdout == f"cinit {VERSION}\n", version.stderr
    assert not (venv / "bin" / "systemctl").exists()
    assert not (venv / "bin" / "journalctl").exists()

    done = subprocess.run([*pip, "--find-links", str(dist), f"cinit[systemctl]=={VERSION}"],
                          capture_output=True, text=True, timeout=240, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("systemctl", "journalctl"):
        script = venv / "bin" / name
        assert script.read_text().startswith(f"#!{venv}/bin/python"), name
        ran = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                             timeout=60, cwd="/", env=env)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert name in ran.stdout.splitlines()[0], ran.stdout  # cinit answered as `name`


def test_the_extra_names_the_shim_of_the_same_version() -> None:
    cinit = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    shim = tomllib.loads(
        (ROOT / "packaging" / "systemctl-shim" / "pyproject.toml").read_text()
    )["project"]
    assert cinit["optional-dependencies"]["systemctl"] == [f"cinit-systemctl=={VERSION}"]
    assert shim["version"] == VERSION and shim["dependencies"] == [f"cinit=={VERSION}"]


def test_the_sdist_holds_the_package_and_its_examples(dist: Path) -> None:
    with tarfile.open(dist / f"cinit-{VERSION}.tar.gz") as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "LICENSE", "packaging/scripts/cinit",
            "cinit/__init__.py", "cinit/examples/units/web.service"} <= names  # fmt: skip


def test_the_wheel_script_is_the_plain_cinit_script(dist: Path) -> None:
    with zipfile.ZipFile(dist / f"cinit-{VERSION}-py3-none-any.whl") as wheel:
        scripts = [n for n in wheel.namelist() if ".data/scripts/" in n]
    assert [s.rsplit("/", 1)[1] for s in scripts] == ["cinit"]


def test_the_launcher_copied_alone_says_to_copy_the_directory(tmp_path: Path) -> None:
    if not (BUNDLE / "libexec" / "cinit").exists():
        pytest.skip("no standalone build in bin/ (make standalone)")
    if (BUNDLE / "cinit").is_symlink():
        pytest.skip("bin/cinit was built without a C compiler: no launcher")
    alone = tmp_path / "usr" / "local" / "bin" / "cinit"
    alone.parent.mkdir(parents=True)
    shutil.copy(ROOT / "bin" / "cinit", alone)  # cp bin/cinit /usr/local/bin/: follows the link
    done = subprocess.run([str(alone), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 127
    assert done.stderr.startswith(f"cinit: {alone.parent}/libexec/cinit is missing: ")
    assert "Copy the whole directory" in done.stderr
