"""`render_unit`: a `Unit` back to unit-file text (the inverse of `parse_unit`)."""

from __future__ import annotations

from cinit.units import schema
from cinit.units.loader import SECTION_CLASSES, SERVICE_TARGET, SOCKET_TARGET, resolved_defaults
from cinit.units.model import Unit


def render_unit(unit: Unit) -> str:
    """Unit-file text that parses back into an equal `Unit` (defaults are omitted)."""
    out: list[str] = []
    for section_name, target in schema.SECTIONS[unit.kind].items():
        data = getattr(unit, target if target != schema.UNIT else "unit")
        own = target in (SERVICE_TARGET, SOCKET_TARGET, schema.TIMER)
        given = {field: getattr(data, field, None) for field in ("type", "timeout_sec")}
        resolved = resolved_defaults(unit.name, unit.kind, given)
        default = SECTION_CLASSES[target](**(resolved if own else {}))
        body: list[str] = []
        for (sec, name), row in schema.DIRECTIVES.items():
            if sec != section_name or row.target != target:
                continue
            value = getattr(data, row.field)
            if row.field in ("conditions", "asserts"):
                # All Condition*= (Assert*=) share one ordered list: write it once, in order.
                prefix = "Condition" if row.field == "conditions" else "Assert"
                if not any(line.startswith(prefix) for line in body):
                    body += [_escape(c.describe(prefix)) for c in value]
                continue
            if value == getattr(default, row.field):
                continue
            items = value if row.multi else [value]
            body += [f"{name}={_escape(row.render(item))}" for item in items]
        if body:
            out.append(f"[{section_name}]")
            out += body
            out.append("")
    return "\n".join(out)


def _escape(text: str) -> str:
    # Specifiers are expanded on load, so a literal "%" must be written "%%".
    return text.replace("%", "%%")
