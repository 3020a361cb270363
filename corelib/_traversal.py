"""The one walker over config trees, shared by instantiate, check, to_dict and save_config.

Trees are made of containers (dicts, including :class:`LazyConfig`, plain lists and plain
tuples) and leaves (everything else). :func:`fold` rebuilds a tree bottom-up with an explicit
stack (no recursion limit), visits a container reached by several paths only once (identity-based
sharing), and reports a cycle with the location of the reference that closes it. Locations are
cheap linked records that are only spelled out (``model.blocks[3].width``) when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from corelib._errors import quote

__all__ = [
    "KEY_LIMIT",
    "PATH_LIMIT",
    "ROOT",
    "CycleError",
    "Location",
    "fold",
    "format_path",
    "is_container",
]


class Location:
    """Where a node sits in a tree: a parent location and a key (dict key or list index)."""

    __slots__ = ("key", "parent")

    def __init__(self, parent: Location | None, key: Any) -> None:
        self.parent = parent
        self.key = key

    def child(self, key: Any) -> Location:
        return Location(self, key)

    def keys(self) -> list[Any]:
        """The keys from the root down to this location."""
        keys: list[Any] = []
        loc: Location | None = self
        while loc is not None and loc.parent is not None:
            keys.append(loc.key)
            loc = loc.parent
        keys.reverse()
        return keys

    def __str__(self) -> str:
        return format_path(self.keys())

    def __repr__(self) -> str:
        return f"Location({str(self)!r})"


ROOT: Final = Location(None, None)


KEY_LIMIT: Final = 40
"""The most characters of one key a spelled path shows (then ``…[+N chars]``)."""
PATH_LIMIT: Final = 500
"""About the most characters a spelled path has: its start and end, with the middle left out."""


def format_path(keys: Sequence[Any], *, exact: bool = False) -> str:
    """Spell keys as a path: ``["model", "blocks", 3, "width"]`` -> ``model.blocks[3].width``.

    For messages, a key longer than ``KEY_LIMIT`` characters is cut (``…[+N chars]``) and a path
    longer than ``PATH_LIMIT`` keeps its first and last keys around ``…[+N keys]…``, so a huge or
    deep key costs little. ``exact=True`` spells every key in full (a file that must read back).
    """
    if exact:
        return "".join(_spell(key, index == 0, exact=True) for index, key in enumerate(keys))
    half = PATH_LIMIT // 2
    head: list[str] = []
    size = start = 0
    while start < len(keys):  # the first keys, up to half the limit
        part = _spell(keys[start], start == 0, exact=False)
        if size + len(part) > half:
            break
        head.append(part)
        size += len(part)
        start += 1
    tail: list[str] = []
    size = 0
    end = len(keys)
    while end > start:  # the last keys, up to the other half
        part = _spell(keys[end - 1], end == 1, exact=False)
        if size + len(part) > half:
            break
        tail.append(part)
        size += len(part)
        end -= 1
    skipped = f"…[+{end - start} keys]…" if end > start else ""
    return "".join(head) + skipped + "".join(reversed(tail))


def _spell(key: Any, first: bool, *, exact: bool) -> str:
    """One key of a path: ``name`` (``.name`` after the first), ``[3]``, or ``[repr]``."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"[{key}]" if exact or key.bit_length() <= 128 else f"[{quote(key, KEY_LIMIT)}]"
    if isinstance(key, str) and key:
        if not exact and len(key) > KEY_LIMIT:
            key = f"{key[:KEY_LIMIT]}…[+{len(key) - KEY_LIMIT} chars]"
        return key if first else f".{key}"
    return f"[{key!r}]" if exact else f"[{quote(key, KEY_LIMIT)}]"


class CycleError(Exception):
    """A node contains itself. ``location`` is the reference closing the cycle."""

    def __init__(self, location: Location, node_location: Location) -> None:
        self.location = location
        self.node_location = node_location
        super().__init__(
            f"cycle: {str(location) or '<root>'} refers back to its ancestor "
            f"{str(node_location) or '<root>'}"
        )


def is_container(value: Any) -> bool:
    """Whether the walker descends into ``value`` (dicts, plain lists, plain tuples)."""
    return isinstance(value, dict) or type(value) in (list, tuple)


Visit = Callable[[Any, Any, Location], Any]
Descend = Callable[[Any], bool]
Enter = Callable[[Any, Location], None]
Revisit = Callable[[Any, Any, Location, Location], Any]
Refer = Callable[[str, Any, Location, Any], Any]


def fold(
    root: Any,
    visit: Visit,
    *,
    descend: Descend | None = None,
    enter: Enter | None = None,
    revisit: Revisit | None = None,
    refer: Refer | None = None,
) -> Any:
    """Rebuild ``root`` bottom-up and return ``visit``'s value for it.

    ``visit(node, children, location)`` is called once per container, children first;
    ``children`` holds the node's values with containers replaced by their visit values (a dict
    for dict nodes, a list for lists and tuples), or is ``None`` when ``descend(node)`` (asked of
    dict nodes only) said not to look inside. ``enter(node, location)`` is called when a container
    is first reached. A container reached again gets its first value (``revisit(node, value,
    first_location, location)`` may return another). A leaf root is returned as is.
    ``refer(text, holder, holder_location, key)`` is asked for every string ``holder[key]``
    that contains ``${`` (only those pay; no location is made for it) and returns what stands
    in its place: a value, or a container of the tree, which is then walked there like any
    child (so a reference to a node shares that node).
    """
    if not is_container(root):
        return root
    # id(node) -> None while the node is open (on the stack), (value, location) once visited.
    state: dict[int, Any] = {}
    missing = _MISSING
    if enter is not None:
        enter(root, ROOT)
    stack = [_frame(root, ROOT, descend)]
    state[id(root)] = None
    while True:
        frame = stack[-1]
        loc, items, acc, is_dict = frame[1], frame[2], frame[3], frame[4]
        descended = False
        for key, child in items:
            kind = type(child)
            if kind is str and refer is not None and "${" in child:
                child = refer(child, frame[0], loc, key)
                kind = type(child)
            if kind in _SCALARS:
                value = child
            elif kind is list or kind is tuple or isinstance(child, dict):
                hit = state.get(id(child), missing)
                if hit is missing:  # open a frame for it (inlined _frame: the hot path)
                    frame[5] = key
                    child_loc = Location(loc, key)
                    if enter is not None:
                        enter(child, child_loc)
                    if kind is list or kind is tuple:
                        stack.append([child, child_loc, enumerate(child), [], False, None])
                    elif descend is None or descend(child):
                        stack.append([child, child_loc, iter(child.items()), {}, True, None])
                    else:
                        stack.append([child, child_loc, _NO_ITEMS, None, True, None])
                    state[id(child)] = None
                    descended = True
                    break
                if hit is None:
                    raise CycleError(Location(loc, key), _open_location(stack, child))
                value = hit[0]
                if revisit is not None:
                    value = revisit(child, value, hit[1], Location(loc, key))
            else:
                value = child
            if is_dict:
                acc[key] = value
            else:
                acc.append(value)
        if descended:
            continue
        stack.pop()
        node = frame[0]
        value = visit(node, acc, loc)
        state[id(node)] = (value, loc)
        if not stack:
            return value
        parent = stack[-1]
        if parent[4]:
            parent[3][parent[5]] = value
        else:
            parent[3].append(value)


_MISSING: Final = object()
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})  # a fast path for leaves
_NO_ITEMS: Final = iter(())


def _frame(node: Any, loc: Location, descend: Descend | None) -> list[Any]:
    """A stack frame: node, location, items iterator, children so far, is-dict, pending key."""
    if isinstance(node, dict):
        if descend is not None and not descend(node):
            return [node, loc, _NO_ITEMS, None, True, None]
        return [node, loc, iter(node.items()), {}, True, None]
    return [node, loc, enumerate(node), [], False, None]


def _open_location(stack: list[list[Any]], node: Any) -> Location:
    for frame in stack:
        if frame[0] is node:
            loc: Location = frame[1]
            return loc
    return ROOT
