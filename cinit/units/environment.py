"""Environment forms: `Environment=` assignments, `EnvironmentFile=` contents (systemd's
env-file rules) and cinit's `${VAR}` / `${VAR:-default}` expansion of non-Exec values
against its own environment (specifiers: `cinit.units.specifiers`).

Nothing here touches the OS except `read_env_file`. Parsers raise only `ValueFormError`.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence

from cinit.units._files import read_regular_file
from cinit.units._text import (
    ENV_NAME,
    NEWLINE,
    WHITESPACE,
    check_no_nul,
    quoted,
)
from cinit.units.commands import quote_word, tokenize_words
from cinit.units.diagnostics import ValueFormError

# --- Environment= -------------------------------------------------------------------------


def parse_environment(text: str) -> list[tuple[str, str]]:
    """An Environment= value: words (systemd quoting and C escapes), each `NAME=VALUE`.

    `"A=1 2" B=3` gives `[("A", "1 2"), ("B", "3")]`. NAME must match
    `[A-Za-z_][A-Za-z0-9_]*`. Every assignment is returned in order, duplicates included
    (the last one wins when applied). Unknown escapes are errors here, as in systemd.
    """
    check_no_nul(text, "environment assignment")
    pairs: list[tuple[str, str]] = []
    for word, _raw in tokenize_words(text, cunescape=True, relax=False, what="environment value"):
        name, equals, value = word.partition("=")
        if not equals:
            raise ValueFormError(
                f"invalid environment assignment {quoted(word)} in {quoted(text)}: "
                "expected NAME=VALUE"
            )
        if not ENV_NAME.fullmatch(name):
            raise ValueFormError(
                f"invalid environment variable name {quoted(name)} in {quoted(text)}: "
                "use letters, digits and '_', not starting with a digit"
            )
        pairs.append((name, value))
    return pairs


def render_environment(pairs: Sequence[tuple[str, str]]) -> str:
    """Environment= text such that `parse_environment(render_environment(p)) == list(p)`."""
    words: list[str] = []
    for name, value in pairs:
        if not ENV_NAME.fullmatch(name):
            raise ValueFormError(f"invalid environment variable name {quoted(name)}")
        check_no_nul(value, "environment value")
        words.append(quote_word(f"{name}={value}"))
    return " ".join(words)


# --- EnvironmentFile= contents (systemd's load_env_file) ----------------------------------

# The states of the env-file reader (one per kind of character it may be in the middle of).
_PRE_KEY, _KEY, _PRE_VALUE, _VALUE, _VALUE_ESCAPE = range(5)
_SINGLE_QUOTED, _DOUBLE_QUOTED, _DOUBLE_QUOTED_ESCAPE, _COMMENT, _COMMENT_ESCAPE = range(5, 10)
_SHELL_ESCAPABLE = '"\\`$'


def parse_env_file(text: str, *, warnings: list[str] | None = None) -> list[tuple[str, str]]:
    """The assignments of an EnvironmentFile=, following systemd's env-file reader.

    - Lines `KEY=VALUE`; whitespace around KEY and after `=` is ignored; `\\n` and `\\r`
      end lines. Lines starting with `#` or `;` (after blanks) are comments.
    - Unquoted values: trailing whitespace is dropped, a backslash takes the next character
      literally, and a backslash at the end of a line joins the next line.
    - `'...'` is literal and may span lines; `"..."` may span lines and there a backslash
      escapes `"` `\\` `` ` `` `$` and newline (others keep their backslash). Quoted and
      unquoted pieces right after `=` join: `A="x"y` is `xy`.
    - Lines without `=` and invalid names (such as `export FOO=1`, which systemd does not
      support) are skipped, with one message each appended to `warnings` if given.
    - A key set twice keeps its first position and takes the last value.

    Only an unterminated quote raises `ValueFormError` (systemd silently takes the rest of
    the file as the value; cinit reports it instead).
    """
    result: dict[str, str] = {}
    state = _PRE_KEY
    key: list[str] = []
    value: list[str] = []
    key_blank_from = -1  # index in `key` where its trailing blanks start (-1: none)
    value_blank_from = -1
    line = 1
    entry_line = 1

    def note(message: str) -> None:
        if warnings is not None:
            warnings.append(f"line {entry_line}: {message}")

    def finish(strip_value: bool) -> None:
        name = "".join(key[:key_blank_from] if key_blank_from >= 0 else key)
        cut = value[:value_blank_from] if strip_value and value_blank_from >= 0 else value
        if not ENV_NAME.fullmatch(name):
            hint = " ('export' is not supported)" if name.startswith("export ") else ""
            note(f"invalid variable name {quoted(name)}{hint}; line ignored")
            return
        result[name] = "".join(cut)

    for char in text:
        if state == _PRE_KEY:
            if char in "#;":
                state = _COMMENT
            elif char not in WHITESPACE:
                state = _KEY
                key = [char]
                key_blank_from = -1
                entry_line = line
        elif state == _KEY:
            if char in NEWLINE:
                note(f"{quoted(''.join(key).strip())} has no '='; line ignored")
                state = _PRE_KEY
            elif char == "=":
                state = _PRE_VALUE
                value = []
                value_blank_from = -1
            else:
                if char not in WHITESPACE:
                    key_blank_from = -1
                elif key_blank_from < 0:
                    key_blank_from = len(key)
                key.append(char)
        elif state == _PRE_VALUE:
            if char in NEWLINE:
                finish(strip_value=False)
                state = _PRE_KEY
            elif char == "'":
                state = _SINGLE_QUOTED
            elif char == '"':
                state = _DOUBLE_QUOTED
            elif char == "\\":
                state = _VALUE_ESCAPE
            elif char not in WHITESPACE:
                state = _VALUE
                value.append(char)
        elif state == _VALUE:
            if char in NEWLINE:
                finish(strip_value=True)
                state = _PRE_KEY
            elif char == "\\":
                state = _VALUE_ESCAPE
                value_blank_from = -1
            else:
                if char not in WHITESPACE:
                    value_blank_from = -1
                elif value_blank_from < 0:
                    value_blank_from = len(value)
                value.append(char)
        elif state == _VALUE_ESCAPE:
            state = _VALUE
            if char not in NEWLINE:  # an escaped newline joins the next line
                value.append(char)
        elif state == _SINGLE_QUOTED:
            if char == "'":
                state = _PRE_VALUE
            else:
                value.append(char)
        elif state == _DOUBLE_QUOTED:
            if char == '"':
                state = _PRE_VALUE
            elif char == "\\":
                state = _DOUBLE_QUOTED_ESCAPE
            else:
                value.append(char)
        elif state == _DOUBLE_QUOTED_ESCAPE:
            state = _DOUBLE_QUOTED
            if char in _SHELL_ESCAPABLE:
                value.append(char)
            elif char != "\n":
                value.append("\\" + char)
        elif state == _COMMENT:
            if char == "\\":
                state = _COMMENT_ESCAPE
            elif char in NEWLINE:
                state = _PRE_KEY
        else:  # _COMMENT_ESCAPE: since systemd v254 a comment never continues a line
            state = _PRE_KEY if char in NEWLINE else _COMMENT
        if char == "\n":
            line += 1

    if state in (_SINGLE_QUOTED, _DOUBLE_QUOTED, _DOUBLE_QUOTED_ESCAPE):
        name = "".join(key).strip(WHITESPACE)
        kind = "single" if state == _SINGLE_QUOTED else "double"
        raise ValueFormError(
            f"unterminated {kind} quote in the value of {quoted(name)} (line {entry_line})"
        )
    if state in (_PRE_VALUE, _VALUE, _VALUE_ESCAPE):
        finish(strip_value=state == _VALUE)
    elif state == _KEY:
        note(f"{quoted(''.join(key).strip())} has no '='; line ignored")
    return list(result.items())


# A bound on an environment file, as on a unit file: a larger one is refused, not cut.
_ENV_FILE_LIMIT = 4 * 1024 * 1024


def read_env_file(path: str, *, warnings: list[str] | None = None) -> list[tuple[str, str]]:
    """Read and parse an environment file (see `parse_env_file`).

    `OSError` propagates unchanged (the caller knows whether the file was optional); a FIFO
    or device there is one too (`NotRegularFileError`), never read.
    Bytes that are not UTF-8 become surrogate escapes and reach the process unchanged.
    """
    data = read_regular_file(path, _ENV_FILE_LIMIT + 1)
    if len(data) > _ENV_FILE_LIMIT:
        raise OSError(errno.EFBIG, f"larger than {_ENV_FILE_LIMIT} bytes", path)
    return parse_env_file(data.decode("utf-8", "surrogateescape"), warnings=warnings)


# --- ${VAR} --------------------------------------------------------------------------------------


def expand_vars(text: str, environ: Mapping[str, str]) -> str:
    """Expand `${VAR}` and `${VAR:-default}` against `environ` (container-init extension).

    `${VAR}` is the value, or "" when unset. `${VAR:-default}` is the value when set and
    non-empty, else `default`, taken literally (it may be empty or hold spaces, but no `}`;
    it is not expanded again). `$VAR` without braces is left alone, and `$$` is kept
    verbatim as `$$` (so `$${VAR}` is not expanded). An unterminated `${`, an invalid name
    or another operator (`${VAR:=x}`, `${VAR-x}`) raises `ValueFormError`.
    """
    if "$" not in text:
        return text
    out: list[str] = []
    pos = 0
    while True:
        dollar = text.find("$", pos)
        if dollar < 0:
            out.append(text[pos:])
            return "".join(out)
        if text.startswith("$$", dollar):
            out.append(text[pos : dollar + 2])
            pos = dollar + 2
            continue
        if not text.startswith("${", dollar):
            out.append(text[pos : dollar + 1])
            pos = dollar + 1
            continue
        close = text.find("}", dollar + 2)
        if close < 0:
            raise ValueFormError(f"invalid value {quoted(text)}: unterminated '${{'")
        out.append(text[pos:dollar])
        inner = text[dollar + 2 : close]
        name, operator, default = inner.partition(":-")
        if not ENV_NAME.fullmatch(name):
            raise ValueFormError(
                f"invalid value {quoted(text)}: {quoted('${' + inner + '}')} is not ${{NAME}} "
                "or ${NAME:-default}"
            )
        found = environ.get(name, "")
        out.append(default if operator and not found else found)
        pos = close + 1
