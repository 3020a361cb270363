"""Discovery: the installed distributions' ``corelib.plugins`` entry points, and the reports.

Reading entry points never imports a plugin. A distribution whose entry points cannot be read
fails alone (a report of its own); one whose metadata cannot be read is listed as ``? ?``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import attrs

from corelib._text import describe_exception

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["ENTRY_POINT_GROUP", "Candidate", "PluginReport", "Status", "installed"]

ENTRY_POINT_GROUP = "corelib.plugins"

Status = Literal["loaded", "warning", "failed", "blocked", "conflict"]


@attrs.frozen
class PluginReport:
    """How loading one installed plugin (one entry point) went.

    ``status`` is ``loaded``; ``warning`` (loaded, but see ``warning``: e.g. a ``corelib_*``
    hook implementation that no hookspec knows); ``failed`` (see ``error``; nothing of it is
    registered); ``blocked``; or ``conflict`` (another distribution declares the same name).
    """

    name: str
    distribution: str | None
    version: str | None
    status: Status
    components: int
    module: str
    error: str | None = None
    warning: str | None = None


@attrs.frozen
class Candidate:
    """An installed entry point with its distribution's name and version (read once)."""

    ep: EntryPoint
    distribution: str | None
    version: str | None

    @property
    def label(self) -> str:
        return f"{self.distribution or '?'} {self.version or '?'}"

    def report(self, status: Status, error: str | None = None) -> PluginReport:
        return PluginReport(
            self.ep.name, self.distribution, self.version, status, 0, self.ep.value, error
        )


def installed() -> tuple[list[Candidate], list[PluginReport]]:
    """The ``corelib.plugins`` entry points, sorted by name, then distribution.

    Also the reports of installed distributions whose plugin entry points cannot be read (a
    broken ``entry_points.txt``): they fail alone. A distribution whose metadata cannot be read
    has no name or version (``?``); its plugins are still loaded.
    """
    from importlib.metadata import entry_points  # costly to import: only when discovering

    unreadable: list[PluginReport] = []
    try:
        found = list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # one broken distribution spoils the whole listing: find it
        found, unreadable = _entry_points_one_by_one()
    metadata: dict[int, tuple[str | None, str | None]] = {}
    candidates = []
    for ep in found:
        dist = ep.dist
        if dist is not None and id(dist) not in metadata:
            metadata[id(dist)] = _name_and_version(dist)  # parsed once: the costly part
        name, version = metadata[id(dist)] if dist is not None else (None, None)
        candidates.append(Candidate(ep, name, version))
    candidates.sort(key=lambda c: (c.ep.name, c.distribution or ""))
    return candidates, unreadable


def _entry_points_one_by_one() -> tuple[list[EntryPoint], list[PluginReport]]:
    """What ``entry_points(group=...)`` gives, distribution by distribution, and the failures."""
    from importlib.metadata import distributions

    found: list[EntryPoint] = []
    unreadable: list[PluginReport] = []
    seen: set[str] = set()
    for dist in distributions():
        key = getattr(dist, "_normalized_name", None)  # what entry_points() deduplicates on
        if isinstance(key, str):
            if key in seen:
                continue
            seen.add(key)
        try:
            found.extend(ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP)
        except Exception as exc:
            try:
                text = dist.read_text("entry_points.txt") or ""
            except Exception:  # not even text: report it if it may declare plugins
                text = f"[{ENTRY_POINT_GROUP}]"
            if f"[{ENTRY_POINT_GROUP}]" not in text:
                continue  # not a corelib plugin: not corelib's business
            name, version = _name_and_version(dist)
            error = f"its entry_points.txt cannot be read: {describe_exception(exc)}"
            unreadable.append(
                PluginReport(f"({name or key or '?'})", name, version, "failed", 0, "?", error)
            )
    return found, unreadable


def _name_and_version(dist: Any) -> tuple[str | None, str | None]:
    try:
        fields = dist.metadata
        return fields["Name"], fields["Version"]
    except Exception:  # unreadable METADATA: the plugin still loads, as "? ?"
        return None, None
