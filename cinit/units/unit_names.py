"""Unit names as systemd.unit(5) reads them: templates, instances, and systemd-escape.

`web.service` is a plain name; `getty@.service` a template (never started itself);
`getty@tty1.service` an instance of it (instance `tty1`). The escaping rules are
systemd-escape's: a `-` stands for `/`, and `\\xNN` for the byte NN.

Pure code: names in, names out.
"""

from __future__ import annotations

from cinit.units.diagnostics import ValueFormError


def split_name(name: str) -> tuple[str, str | None, str]:
    """(prefix, instance, suffix) of a unit name: instance None without an "@".

    `x@y.service` -> ("x", "y", ".service"); `x@.service` -> ("x", "", ".service");
    `x.service` -> ("x", None, ".service").
    """
    stem, dot, kind = name.rpartition(".")
    suffix = dot + kind
    if not dot:
        stem, suffix = name, ""
    prefix, at, instance = stem.partition("@")
    return prefix, (instance if at else None), suffix


def is_template(name: str) -> bool:
    """Whether `name` is a template (`x@.service`): an "@" right before the suffix."""
    if "@" not in name:
        return False
    _prefix, instance, _suffix = split_name(name)
    return instance == ""


def is_instance(name: str) -> bool:
    """Whether `name` is an instance of a template (`x@y.service`)."""
    if "@" not in name:
        return False
    _prefix, instance, _suffix = split_name(name)
    return bool(instance)


def template_of(name: str) -> str:
    """The template an instance comes from (`x@y.service` -> `x@.service`); "" if none."""
    if "@" not in name:
        return ""
    prefix, instance, suffix = split_name(name)
    return f"{prefix}@{suffix}" if instance else ""


def unescape(text: str) -> str:
    """systemd's unit_name_unescape: `-` is `/`, `\\xNN` the byte NN (UTF-8 decoded).

    `ValueFormError` for a `\\x` without two hex digits, as `systemd-escape -u` refuses it.
    """
    if "-" not in text and "\\" not in text:
        return text
    out = bytearray()
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "-":
            out += b"/"
            pos += 1
        elif char == "\\":
            digits = text[pos + 2 : pos + 4]
            if text[pos + 1 : pos + 2] != "x" or len(digits) != 2 or not _is_hex(digits):
                raise ValueFormError(f"cannot unescape {text!r}: '\\' must start \\xNN")
            out.append(int(digits, 16))
            pos += 4
        else:
            out += char.encode("utf-8", "surrogateescape")
            pos += 1
    return out.decode("utf-8", "surrogateescape")


def _is_hex(digits: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in digits)


def unescape_path(text: str) -> str:
    """systemd's unit_name_path_unescape (`systemd-escape -u -p`): an absolute path.

    `-` alone is `/`; otherwise the unescaped text gets a leading `/`, and must not
    start or end with `/` nor hold `//`, `.` or `..` components.
    """
    if not text:
        raise ValueFormError("cannot unescape an empty string as a path")
    if text == "-":
        return "/"
    plain = unescape(text)
    parts = plain.split("/")
    if plain.startswith("/") or plain.endswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueFormError(f"cannot unescape {text!r} as a path: not a normalized path")
    return "/" + plain
