"""cinit's unit-file language: the public API.

Text in, typed units and a dependency graph out; no processes. Images import this for
corpus tests of their own units::

    from cinit.units import load_units
    unit_set = load_units("units/", "drop-ins/", strict=True)
    assert unit_set.ok, [d.format() for d in unit_set.diagnostics]
"""

from cinit.boot_path import TYPE_CHECKING
from cinit.units.cross_checks import check_units
from cinit.units.diagnostics import Diagnostic, Severity, UnitError, ValueFormError
from cinit.units.graph import DependencyGraph, build_graph
from cinit.units.loader import (
    DEFAULT_DROP_IN_DIR,
    DEFAULT_UNITS_DIR,
    UnitSet,
    is_unit_filename,
    load_units,
    parse_unit,
)
from cinit.units.model import (
    ActivationMode,
    Condition,
    ConditionKind,
    EnvironmentFileRef,
    ExecCommand,
    ExitStatusSet,
    InstallSection,
    ListenAddress,
    ListenKind,
    Output,
    OutputTarget,
    RestartPolicy,
    ServiceSection,
    ServiceType,
    SocketSection,
    TimerSection,
    Unit,
    UnitKind,
    UnitSection,
    UnitSource,
)
from cinit.units.scan import Override

if TYPE_CHECKING:
    from cinit.units.render import render_unit

__all__ = [
    "DEFAULT_DROP_IN_DIR",
    "DEFAULT_UNITS_DIR",
    "ActivationMode",
    "Condition",
    "ConditionKind",
    "DependencyGraph",
    "Diagnostic",
    "EnvironmentFileRef",
    "ExecCommand",
    "ExitStatusSet",
    "InstallSection",
    "ListenAddress",
    "ListenKind",
    "Output",
    "OutputTarget",
    "Override",
    "RestartPolicy",
    "ServiceSection",
    "ServiceType",
    "Severity",
    "SocketSection",
    "TimerSection",
    "Unit",
    "UnitError",
    "UnitKind",
    "UnitSection",
    "UnitSet",
    "UnitSource",
    "ValueFormError",
    "build_graph",
    "check_units",
    "is_unit_filename",
    "load_units",
    "parse_unit",
    "render_unit",
]


def __getattr__(name: str) -> object:
    # render_unit is for tools and tests: PID 1 does not import its module at boot.
    if name == "render_unit":
        from cinit.units.render import render_unit

        return render_unit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
