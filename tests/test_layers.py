"""The arrows allowed between cinit's parts (docs/architecture.md), checked on the source.

Every `from cinit.X import ...` (at module level, in a function, or for type checking) is
an arrow from the importing part to X's part; an arrow not in ALLOWED fails this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

CINIT = Path(__file__).resolve().parent.parent / "cinit"

# Pure modules at the top: anything may use them.
SHARED = {"boot_path", "signal_policy"}
# part -> the parts it may import (besides itself and SHARED).
ALLOWED: dict[str, set[str]] = {
    "units": set(),  # pure, the public API: text in, typed units out
    "machines": {"units"},  # pure decisions: no threads, no OS
    "io": {"units"},  # the OS; never decides, never knows an actor
    "events": {"io", "machines", "units"},
    "actors": {"io", "machines", "units"},  # feed machines, act through io
    "tools": {"machines"},  # readers of the stream and the trace
    "boot": {"actors", "events", "io", "machines", "units"},  # wires it all together
    "cli": {"boot", "io", "tools", "units"},
    "__main__": {"cli"},
    "boot_path": set(),
    "signal_policy": set(),
}
# Arrows that are known and not yet removed: (importing module, imported module).
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _arrows() -> list[tuple[str, str]]:
    arrows = []
    for path in CINIT.rglob("*.py"):
        relative = path.relative_to(CINIT.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cinit."):
                arrows.append((module, str(node.module)))
    return arrows


def test_every_import_follows_an_allowed_arrow() -> None:
    arrows = _arrows()
    assert len(arrows) > 100  # the walk found the code
    wrong = sorted(
        f"{source} -> {target}"
        for source, target in arrows
        if _part(target) not in SHARED | {_part(source)} | ALLOWED[_part(source)]
        and (source, target) not in KNOWN_EXCEPTIONS
    )
    assert wrong == []


def test_the_known_exceptions_still_exist() -> None:
    assert set(_arrows()) >= KNOWN_EXCEPTIONS  # a removed one is taken off the list
