"""`cinit tmpfiles --create [--remove] [--boot] [...] [CONFIG...]`: tmpfiles.d by hand.

The same code cinit runs at boot (`cinit.io.tmpfiles`), for an image build step
(`RUN cinit tmpfiles --create --root=/`), a oneshot unit, or a check against a tree
(`--root DIR`). Each problem is one line on stderr naming file and line; a summary follows.
Exit statuses are systemd-tmpfiles': 0 every line applied; 65 some lines could not be used
(syntax, unknown user; the others were applied); 73 some lines could not be carried out;
1 the run could not start (no such root); 2 usage.
"""

from __future__ import annotations

import os
import sys

from cinit import PROG
from cinit.cli.args import APPEND, Command, Option, read_command_line

EXIT_CANNOT_RUN = 1
# -E: the trees a container runtime or the kernel provides (systemd-tmpfiles' -E).
VIRTUAL_PREFIXES = ("/dev", "/proc", "/run", "/sys")

TMPFILES = Command(
    "tmpfiles",
    "Apply tmpfiles.d: create, and remove, what its lines say.",
    [f"{PROG} tmpfiles --create|--remove [--boot] [--prefix P]... [--root DIR] [CONFIG...]"],
    "Carry out tmpfiles.d(5) lines as `systemd-tmpfiles --create --remove` does (ageing,\n"
    "--clean, is not offered). CONFIG: a file (a path), a name looked up in /etc, /run,\n"
    "/usr/local/lib, /usr/lib and /lib tmpfiles.d, or - (standard input); none: every\n"
    "file there (a name in /etc/tmpfiles.d hides the same name in the others).\n"
    "Exit 0 all applied, 65 unusable lines, 73 lines that failed, 1 no run, 2 usage.",
    [
        Option("--create", "create and adjust what the lines name"),
        Option("--remove", "remove what D, r and R lines name (before creating)"),
        Option("--boot", "also the lines marked `!` (only safe at boot)"),
        Option("--prefix", "only lines whose path is below P (repeatable)", "P", kind=APPEND),
        Option("--exclude-prefix", "no lines whose path is below P (repeatable)", "P", kind=APPEND),
        Option("-E", "exclude /dev, /proc, /run and /sys", dest="exclude_virtual"),
        Option(
            "--root",
            "act on the tree below DIR (its configuration, users\nand groups too); default: /",
            "DIR",
        ),
    ],
)


def main(args: list[str]) -> int:
    """`cinit tmpfiles [options] [CONFIG...]`; returns the exit status."""
    parsed = read_command_line(TMPFILES, args, words=(0, 1 << 16))
    if isinstance(parsed, int):
        return parsed
    values = parsed.values
    create, remove = bool(values["create"]), bool(values["remove"])
    if not (create or remove):
        from cinit.cli.args import UsageError, usage_error

        return usage_error(f"{PROG} tmpfiles", UsageError("give --create, --remove or both"))
    root = parsed.text_or("root", "/")
    if not os.path.isdir(root):
        sys.stderr.write(f"{PROG} tmpfiles: --root {root}: not a directory\n")
        return EXIT_CANNOT_RUN
    prefixes = _list(values["prefix"])
    excluded = _list(values["exclude_prefix"])
    if values["exclude_virtual"]:
        excluded += list(VIRTUAL_PREFIXES)
    from cinit.io.tmpfiles import apply

    run = apply(
        root,
        parsed.words,
        create=create,
        remove=remove,
        boot=bool(values["boot"]),
        prefixes=prefixes,
        exclude_prefixes=excluded,
    )
    for diagnostic in run.diagnostics:
        sys.stderr.write(diagnostic.format() + "\n")
    sys.stderr.write(f"{PROG} {run.summary()}\n")
    return run.exit_status


def _list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
