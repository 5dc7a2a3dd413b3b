"""Exec lines: systemd's word splitting (quotes, C escapes), prefixes, and the `$VAR`
expansion done when a command starts (systemd.service "Command lines").

Parsers raise only `ValueFormError`, with the offending value quoted.
"""

from __future__ import annotations

from collections.abc import Mapping

from cinit.units._text import (
    ENV_NAME,
    WHITESPACE,
    LazyPattern,
    check_no_nul,
    fs_length,
    quoted,
    skip_ws,
)
from cinit.units.diagnostics import ValueFormError
from cinit.units.model import (
    ExecCommand,
)

# --- word splitting with quotes and C escapes (systemd's extract_first_word) -----------

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "s": " ",
}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")


def _unescape_one(text: str, pos: int) -> tuple[str | int, int] | None:
    """Decode the C escape whose letter is at `pos` (just after the backslash).

    Returns (a character, or an int for a raw byte from \\xNN / \\NNN, and the number of
    characters consumed), or None when it is not a valid escape. NUL is never valid.
    """
    letter = text[pos]
    simple = _SIMPLE_ESCAPES.get(letter)
    if simple is not None:
        return simple, 1
    if letter == "x":
        digits = text[pos + 1 : pos + 3]
        if len(digits) == 2 and all(d in _HEX for d in digits):
            byte = int(digits, 16)
            return (byte, 3) if byte else None
        return None
    if letter in ("u", "U"):
        width = 4 if letter == "u" else 8
        digits = text[pos + 1 : pos + 1 + width]
        if len(digits) != width or not all(d in _HEX for d in digits):
            return None
        code = int(digits, 16)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        if letter == "U" and (0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE):
            return None  # systemd's unichar_is_valid() refuses non-characters
        return chr(code), 1 + width
    if letter in _OCT:
        digits = text[pos : pos + 3]
        if len(digits) == 3 and all(d in _OCT for d in digits):
            byte = int(digits, 8)
            return (byte, 3) if 0 < byte <= 255 else None
        return None
    return None




def _nothing_special(text: str) -> bool:
    """Whether `text` is only plain words separated by systemd whitespace (str.split() is
    then exact): no quote, no backslash, no whitespace but WHITESPACE. (The regular
    expression `[^'"\\\\s]*(?:[ \t\n\r]+[^'"\\\\s]*)*` said the same; `re` is not imported
    for the common case.)"""
    if "'" in text or '"' in text or "\\" in text:
        return False
    # Printable text has no whitespace but the space; otherwise look at each character.
    return text.isprintable() or all(c in WHITESPACE or not c.isspace() for c in text)


# Runs of characters with no special meaning, outside quotes and inside each kind of quote.
_PLAIN_RUN = LazyPattern(r"[^ \t\n\r'\"\\]+")
_QUOTED_RUN = {"'": LazyPattern(r"[^'\\]+"), '"': LazyPattern(r'[^"\\]+')}
# Without backslashes, a quote opens at a quote character and closes at the next same
# one; a word is its unquoted characters and whole quoted runs (in any order).
_QUOTED = LazyPattern("'([^']*)'|\"([^\"]*)\"")
_QUOTED_WORD = LazyPattern("(?:[^ \t\n\r'\"\\\\]|'[^']*'|\"[^\"]*\")+")


class _WordBuilder:
    """Accumulates one word; raw bytes from \\xNN/\\NNN escapes are decoded as UTF-8 runs.

    Undecodable bytes become surrogate escapes, so `os.fsencode` gives back the exact bytes.
    """

    __slots__ = ("_bytes", "_parts")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._bytes = bytearray()

    def _flush(self) -> None:
        if self._bytes:
            self._parts.append(self._bytes.decode("utf-8", "surrogateescape"))
            self._bytes.clear()

    def add(self, text: str) -> None:
        self._flush()
        self._parts.append(text)

    def add_byte(self, byte: int) -> None:
        self._bytes.append(byte)

    def value(self) -> str:
        self._flush()
        return "".join(self._parts)


def tokenize_words(
    text: str,
    *,
    cunescape: bool,
    relax: bool,
    what: str,
    lenient_escapes: bool = False,
    warnings: list[str] | None = None,
    exec_semicolons: bool = False,
) -> list[tuple[str, str]]:
    """Split `text` into (word, raw token text) pairs, like systemd's extract_first_word.

    Quotes (single or double, equivalent) may open anywhere in a word and are removed;
    a backslash escapes the next character inside and outside quotes. With `cunescape`,
    C escapes are decoded; with `lenient_escapes` an unknown escape or a trailing
    backslash is kept verbatim and reported in `warnings` (systemd's retry with
    EXTRACT_CUNESCAPE_RELAX), otherwise it is an error. With `relax`, an unterminated
    quote or a trailing backslash just ends the word (EXTRACT_RELAX). `exec_semicolons`
    makes a bare `\\;` token the word ";" (systemd's special case in Exec lines).
    """
    if _nothing_special(text):  # the common case: no quotes, no escapes
        return [(word, word) for word in text.split()]
    if "\\" not in text:
        unquoted = _QUOTED.sub("", text)
        if "'" not in unquoted and '"' not in unquoted:  # quotes, all closed; no escapes
            return [
                # split() gives the text around and inside quotes (None for the other kind).
                ("".join([part for part in _QUOTED.split(raw) if part]), raw)
                for raw in _QUOTED_WORD.findall(text)
            ]
    tokens: list[tuple[str, str]] = []
    length = len(text)
    pos = 0
    while True:
        pos = skip_ws(text, pos)
        if pos >= length:
            return tokens
        start = pos
        if (
            exec_semicolons
            and text.startswith("\\;", pos)
            and (pos + 2 == length or text[pos + 2] in WHITESPACE)
        ):
            tokens.append((";", "\\;"))
            pos += 2
            continue
        word = _WordBuilder()
        quote = ""
        while pos < length:
            # Take a run of ordinary characters at once: most values have no quotes at all.
            run = (_QUOTED_RUN[quote] if quote else _PLAIN_RUN).match(text, pos)
            if run is not None:
                word.add(run.group())
                pos = run.end()
                continue
            char = text[pos]
            if not quote and char in WHITESPACE:
                break
            if char == quote:
                quote = ""
                pos += 1
            elif not quote and char in "'\"":
                quote = char
                pos += 1
            elif char == "\\":
                pos = _take_escape(
                    text, pos + 1, word, quote, cunescape, relax, what, lenient_escapes, warnings
                )
            else:
                word.add(char)
                pos += 1
        if quote and not relax:
            raise ValueFormError(f"invalid {what} {quoted(text)}: unterminated {quote} quote")
        tokens.append((word.value(), text[start:pos]))


def _take_escape(
    text: str,
    pos: int,
    word: _WordBuilder,
    quote: str,
    cunescape: bool,
    relax: bool,
    what: str,
    lenient: bool,
    warnings: list[str] | None,
) -> int:
    """Handle the character(s) after a backslash at `pos`; return the next position."""
    if pos >= len(text):
        if lenient and cunescape and not quote:
            if warnings is not None:
                warnings.append(f"trailing backslash in {quoted(text)} kept as is")
            word.add("\\")
            return pos
        if relax:
            return pos
        where = f"unterminated {quote} quote" if quote else "trailing backslash"
        raise ValueFormError(f"invalid {what} {quoted(text)}: {where}")
    if not cunescape:
        word.add(text[pos])
        return pos + 1
    decoded = _unescape_one(text, pos)
    if decoded is None:
        escape = "\\" + text[pos]
        if not lenient:
            raise ValueFormError(
                f"invalid {what} {quoted(text)}: unknown escape sequence {quoted(escape)}"
            )
        if warnings is not None:
            warnings.append(
                f"unknown escape sequence {quoted(escape)} in {quoted(text)} kept as is"
            )
        word.add(escape)
        return pos + 1
    value, consumed = decoded
    if isinstance(value, int):
        word.add_byte(value)
    else:
        word.add(value)
    return pos + consumed


def split_words(text: str, *, warnings: list[str] | None = None) -> list[str]:
    """Split a value into words with systemd quoting and C escapes.

    Single and double quotes behave alike and may open anywhere in a word (`--a="b c"` is
    one word `--a=b c`), as systemd's implementation does; `""` is an empty word. Escapes:
    \\a \\b \\f \\n \\r \\t \\v \\\\ \\" \\' \\s (space) \\xNN \\NNN (octal) \\uXXXX \\UXXXXXXXX;
    bytes from \\xNN/\\NNN are decoded as UTF-8 (invalid bytes become surrogate escapes).
    An unterminated quote or a NUL character is an error. An unknown escape (such as
    `\\d`) or a trailing backslash outside quotes is kept verbatim, as systemd does; if a
    `warnings` list is given, one message per such escape is appended to it (systemd logs
    "Ignoring unknown escape sequences").
    """
    check_no_nul(text, "value")
    tokens = tokenize_words(
        text, cunescape=True, relax=False, what="value", lenient_escapes=True, warnings=warnings
    )
    return [word for word, _raw in tokens]


# --- Exec lines (systemd.service "Command lines") --------------------------------------

_SEPARATOR_ERROR = "';' command separator is not supported, use several ExecStart= lines"
_UNSAFE_PATH_CHARS = frozenset("\"'\\\x7f") | frozenset(chr(c) for c in range(1, 32))
_PATH_MAX = 4096
_NAME_MAX = 255


def _check_exec_path(path: str, text: str) -> None:
    def bad(why: str) -> ValueFormError:
        return ValueFormError(f"invalid command line {quoted(text)}: {why}")

    if not path:
        raise bad("empty executable path")
    if not _UNSAFE_PATH_CHARS.isdisjoint(path):
        raise bad(
            f"executable path {quoted(path)} contains quotes, backslashes or control characters"
        )
    if path.endswith("/"):
        raise bad(f"executable path {quoted(path)} is a directory")
    if path.startswith("/"):
        # A character is at most 4 bytes: a short path needs no counting (the common case).
        too_long = len(path) * 4 > _NAME_MAX and (
            fs_length(path) >= _PATH_MAX
            or any(fs_length(part) > _NAME_MAX for part in path.split("/"))
        )
        if too_long:
            raise bad(f"executable path {quoted(path)} is too long")
        return
    if "/" in path:
        raise bad(
            f"executable {quoted(path)} is a relative path; use an absolute path "
            "or a plain program name looked up in PATH"
        )
    if path in (".", "..") or fs_length(path) > _NAME_MAX:
        raise bad(f"invalid executable name {quoted(path)}")


def parse_exec_line(text: str, *, warnings: list[str] | None = None) -> ExecCommand:
    """An Exec*= value: prefixes, then words split as `split_words` does.

    Prefixes `-` (failure ignored), `@` (argv[0] given as the second word), `:` (no
    environment expansion) and one privilege prefix `+`, `!` or `!!` may come in any order,
    each once, before the path (they are read from the unquoted first word, as systemd
    does). The path must be absolute or a plain program name (looked up in PATH at start).
    `$VAR`/`${VAR}` stay verbatim in the words (see `expand_exec_words`). An unquoted `;`
    word (systemd's old command separator) is an error; `\\;` or a quoted `";"` is a
    literal ";" argument. Unknown escapes are kept verbatim and reported in `warnings` if
    given (see `split_words`).
    """
    check_no_nul(text, "command line")
    tokens = tokenize_words(
        text,
        cunescape=True,
        relax=False,
        what="command line",
        lenient_escapes=True,
        warnings=warnings,
        exec_semicolons=True,
    )
    if not tokens:
        raise ValueFormError(f"invalid command line {quoted(text)}: empty command")
    if ";" in text and any(raw == ";" for _word, raw in tokens):
        raise ValueFormError(f"invalid command line {quoted(text)}: {_SEPARATOR_ERROR}")
    first = tokens[0][0]
    ignore_failure = argv0_separate = no_env_expansion = False
    privilege = ""
    pos = 0
    while pos < len(first):
        char = first[pos]
        if char == "-" and not ignore_failure:
            ignore_failure = True
        elif char == "@" and not argv0_separate:
            argv0_separate = True
        elif char == ":" and not no_env_expansion:
            no_env_expansion = True
        elif char == "+" and not privilege:
            privilege = "+"
        elif char == "!" and privilege in ("", "!"):
            privilege += "!"
        else:
            break
        pos += 1
    path = first[pos:]
    _check_exec_path(path, text)
    words = (path, *(word for word, _raw in tokens[1:]))
    if argv0_separate and len(words) < 2:
        raise ValueFormError(
            f"invalid command line {quoted(text)}: '@' needs argv[0] as the word after the path"
        )
    return ExecCommand(
        words=words,
        ignore_failure=ignore_failure,
        argv0_separate=argv0_separate,
        no_env_expansion=no_env_expansion,
        privilege_prefix=privilege,
    )


_PLAIN_WORD = LazyPattern(r"[^\s'\"\\\x00-\x1f\x7f]+")
_RENDER_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def quote_word(word: str) -> str:
    """One word as systemd-quoted text that splits back to exactly `word`."""
    if word != ";" and _PLAIN_WORD.fullmatch(word) and word.isprintable():
        return word
    out = ['"']
    for char in word:
        escaped = _RENDER_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " " or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        elif "\udc80" <= char <= "\udcff":  # a raw byte kept by surrogateescape: write it back
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render_exec_line(cmd: ExecCommand) -> str:
    """Exec*= text such that `parse_exec_line(render_exec_line(cmd)) == cmd`.

    `%` is not escaped (specifier expansion is a separate step). A command that no text
    can express (a NUL in a word, an invalid path) raises `ValueFormError`.
    """
    if not cmd.words:
        raise ValueFormError("cannot render an empty command")
    for word in cmd.words:
        check_no_nul(word, "command word")
    prefix = (
        ("-" if cmd.ignore_failure else "")
        + ("@" if cmd.argv0_separate else "")
        + (":" if cmd.no_env_expansion else "")
        + cmd.privilege_prefix
    )
    text = " ".join([quote_word(prefix + cmd.path), *map(quote_word, cmd.words[1:])])
    if parse_exec_line(text) != cmd:
        raise ValueFormError(f"cannot render command {list(cmd.words)!r} as an Exec line")
    return text


def _braced_expand(word: str, env: Mapping[str, str]) -> str:
    """systemd's replace_env(): `${NAME}` -> value (unset: empty), `$$` -> `$`.

    `${NAME:...}` and an unterminated `${` stay verbatim; `$NAME` without braces is left.
    """
    out: list[str] = []
    pos = 0
    length = len(word)
    while True:
        dollar = word.find("$", pos)
        if dollar < 0 or dollar + 1 >= length:
            out.append(word[pos:])
            return "".join(out)
        following = word[dollar + 1]
        if following == "$":
            out.append(word[pos : dollar + 1])
            pos = dollar + 2
        elif following == "{":
            end = dollar + 2
            while end < length and word[end] not in ":}":
                end += 1
            if end < length and word[end] == "}":
                out.append(word[pos:dollar])
                out.append(env.get(word[dollar + 2 : end], ""))
                pos = end + 1
            else:  # "${A:-x}" is not supported in Exec lines, "${A" is unterminated: literal
                out.append(word[pos:end])
                pos = end
        else:
            out.append(word[pos : dollar + 1])
            pos = dollar + 1


def expand_exec_words(cmd: ExecCommand, env: Mapping[str, str]) -> list[str]:
    """Expand the unit's environment into an Exec line at start time, as systemd does.

    A word that is `$NAME` as a whole becomes the value split into 0..n words (on
    whitespace, honouring quotes in the value); `${NAME}` anywhere in a word becomes the
    exact value (never splits); `$$` becomes `$`; unset variables expand to nothing. As in
    systemd, a whole word `$` followed by an invalid name (`$`, `$1`, `$A.b`) yields no word.
    With `cmd.no_env_expansion` (":" prefix) nothing is expanded.

    The result's first element is always `cmd.path`, never expanded (systemd executes the
    literal path). Without "@" the whole list is the argv (argv[0] == path); with "@"
    (`cmd.argv0_separate`) the result is `[path, argv0, *args]`: execute `result[0]` with
    argv `result[1:]`.
    """
    if cmd.no_env_expansion:
        return list(cmd.words)
    result = [cmd.words[0]]
    for word in cmd.words[1:]:
        if word.startswith("$") and word[1:2] not in ("{", "$"):
            name = word[1:]
            value = env.get(name) if ENV_NAME.fullmatch(name) else None
            if value is not None:
                tokens = tokenize_words(value, cunescape=False, relax=True, what="value")
                result.extend(token for token, _raw in tokens)
            continue
        result.append(_braced_expand(word, env))
    return result
