"""Which `.d/*.conf` snippets apply to a unit, in the order systemd applies them.

systemd.unit(5): for `foo-bar@a.service`, the snippet directories are
`foo-bar@a.service.d/`, its template's `foo-bar@.service.d/`, its dash prefixes'
`foo-.service.d/`, and the type's `service.d/` (also each alias's `NAME.d/`), in every unit
directory. All their `*.conf` files apply, sorted by file name; of files with the same
name, the one found first wins: a higher-precedence directory before a lower one, and
within one directory the more specific name before the less.

Pure code: the directories were listed by `scan`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cinit.units import unit_names

# One directory's snippet directories: the stem ("web.service") -> (file name, path).
SnippetDirs = Mapping[str, Sequence[tuple[str, str]]]


def snippet_stems(name: str, aliases: Iterable[str] = ()) -> list[str]:
    """The snippet directory stems (`NAME` of `NAME.d/`) for the unit `name`, most
    specific first."""
    stems = [name, *aliases]
    prefix, instance, suffix = unit_names.split_name(name)
    if instance:
        stems.append(f"{prefix}@{suffix}")
    # foo-bar-baz.service: foo-bar-.service, then foo-.service.
    cut = prefix.rfind("-", 0, len(prefix) - 1 if prefix.endswith("-") else len(prefix))
    while cut > 0:
        stems.append(f"{prefix[: cut + 1]}{suffix}")
        cut = prefix.rfind("-", 0, cut)
    stems.append(suffix.lstrip("."))  # service.d/, socket.d/
    return list(dict.fromkeys(stems))


def snippets_for(
    name: str, directories: Sequence[SnippetDirs], aliases: Iterable[str] = ()
) -> list[str]:
    """The paths of the snippets that apply to `name`, in the order they apply.

    `directories` are the unit directories' snippet listings, highest precedence first.
    """
    stems = snippet_stems(name, aliases)
    chosen: dict[str, str] = {}
    for listing in directories:
        if not listing:
            continue
        for stem in stems:
            for file_name, path in listing.get(stem, ()):
                chosen.setdefault(file_name, path)
    return [chosen[file_name] for file_name in sorted(chosen)]


def is_shared_stem(stem: str) -> bool:
    """Whether a snippet directory serves many units (a dash prefix or a type): such a
    directory that matches no loaded unit is not worth a note."""
    prefix, _instance, suffix = unit_names.split_name(stem)
    return not suffix or prefix.endswith("-")
