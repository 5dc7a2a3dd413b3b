"""How long ago, as `cinit status` and `cinit watch` show it: systemd's style.

`systemctl status` says "since ...; 3min 5s ago": the two largest units of d, h, min, s.
"""


def elapsed(seconds: float) -> str:
    """`42s`, `3min 5s`, `2h 7min`, `3d 4h` (whole seconds; negative counts as 0)."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}min {whole % 60}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60}min"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"
