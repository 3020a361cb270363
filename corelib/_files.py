"""Config files: ``load_config`` and ``save_config`` for .py, .yaml/.yml, .json and .toml.

Shared nodes survive a round trip. YAML writes them as anchors and aliases. JSON and TOML write
the first occurrence in full and every later one as ``{"_ref_": "model.blocks[3]"}``, the path
of the first occurrence (a list of keys where a key would not read back from a path string);
loading puts the one object back at every reference. TOML has no null: ``None`` is written as
``{"_none_": true}``. A dict of user data shaped like one of these forms is written inside
``{"_escape_": {...}}`` and read back as it was. What a file may hold is bounded (depth,
integer size, string keys: see ``corelib._bounds``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
import sys
import traceback
import types
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

from corelib._bases import BASE_KEY, LineOf, load_with_bases
from corelib._bounds import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    HugeInt,
    check_brackets,
    check_tree,
    huge_int,
    recursion_headroom,
)
from corelib._errors import ConfigError, quote
from corelib._lazy import LazyConfig
from corelib._overrides import split_path
from corelib._plain import to_dict
from corelib._provenance import copy_history, set_source, site_of
from corelib._toml import dumps_toml
from corelib._traversal import CycleError, Location, fold, format_path

__all__ = ["load_config", "load_tree", "save_config"]

REF_KEY = "_ref_"
NONE_KEY = "_none_"
ESCAPE_KEY = "_escape_"
_FORM_KEYS = frozenset({REF_KEY, NONE_KEY, ESCAPE_KEY})
_LOADABLE = (".py", ".yaml", ".yml", ".json", ".toml")
_SCALARS = (str, int, float, bool, type(None))
_package_numbers = itertools.count()


def load_config(path: str | os.PathLike[str], *, safe: bool = False) -> Any:
    """Read a config file: a tree of :class:`LazyConfig` nodes, lists and scalars.

    ``.py`` files (detectron2 style) contribute their public module-level names whose values
    are config nodes, dicts, lists or scalars (and ``_base_``), and may import from sibling files
    (``from .base import model``). Every ``_base_`` is merged in (see docs/configs.md, "Bases")
    and every key remembers where it was written (:func:`corelib.explain`). ``safe=True`` (the
    CLI's choice for YAML, JSON and TOML files) keeps bases, and presets that overrides read
    later, in the folder of ``path`` or below it, and refuses ``.py`` ones named by data files.
    Raises ConfigError naming the file (and line or key path) on failure, including a tree nested
    deeper than ``MAX_DEPTH`` levels, an integer of more than ``MAX_INT_DIGITS`` digits, and
    (YAML) a key that is not a string.
    """
    file = Path(path)
    cfg = load_tree(file, root=file.parent if safe else None)
    set_source(cfg, file, safe=safe)
    return cfg


def load_tree(file: Path, *, root: Path | None) -> Any:
    """``file``'s tree with its bases merged; ``root``: None, or the folder bases must lie in."""
    cfg, merged = load_with_bases(file, _read, root=root)
    if merged:
        _check_loaded(cfg, file, plain=False)  # merged bases may nest deeper than each file
    return cfg


def _read(file: Path) -> tuple[Any, LineOf]:
    """One config file's tree (no bases merged) and where each key was written."""
    suffix = file.suffix.lower()
    if suffix not in _LOADABLE:
        raise ConfigError(
            f"{file}: unknown config file type {quote(suffix or '(none)')}; "
            f"expected one of {', '.join(_LOADABLE)}"
        )
    if not file.is_file():
        raise ConfigError(f"{file}: no such config file")
    if suffix == ".py":
        return _load_python(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from exc
    lines: dict[int, dict[Any, int]] = {}
    try:
        tree = _parse(text, file, suffix, lines)
    except RecursionError:  # a safety net: the bracket scans keep the parsers from recursing
        raise ConfigError(f"{file}: nested too deeply to read") from None

    def line_of(node: Any, key: Any, location: Location) -> tuple[str | None, int | None]:
        return None, lines.get(id(node), {}).get(key)

    return tree, line_of


def _parse(text: str, file: Path, suffix: str, lines: dict[int, dict[Any, int]]) -> Any:
    if suffix in (".yaml", ".yml"):
        from corelib._yaml import load_yaml  # PyYAML loads on first use: import corelib is fast

        data = load_yaml(text, str(file), mapping=LazyConfig, lines=lines)
        return LazyConfig() if data is None else _check_loaded(data, file)
    if suffix == ".json":
        check_brackets(text, _JSON_TOKENS, str(file))
        try:
            with recursion_headroom(2 * MAX_DEPTH + 1):
                data = json.loads(text, object_pairs_hook=_unique_keys, parse_int=huge_int)
        except json.JSONDecodeError as exc:
            message = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
            raise ConfigError(f"{file}: {message}") from exc
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc}") from exc
        return _check_loaded(_from_plain(data, file, with_none_form=False), file)
    check_brackets(text, _TOML_TOKENS, str(file))
    try:
        with recursion_headroom(2 * MAX_DEPTH + 1):
            data = _load_toml(text)
    except ValueError as exc:  # TOMLDecodeError, or a marked integer that would not re-read
        raise ConfigError(f"{file}: {exc}") from exc
    return _check_loaded(_from_plain(data, file, with_none_form=True), file)


# Strings and comments (skipped, even when unterminated: every match succeeds, so a scan is
# linear) and brackets, for check_brackets; TOML's integers over the digit limit.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*"?|[\[\]{}]')
_TOML_TOKENS = re.compile(
    r'"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*(?:"""|\\?\Z)'
    r"|'''[\s\S]*?(?:'''|\Z)"
    r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?'
    r"|'[^'\n]*'?"
    r"|#[^\n]*"
    r"|[\[\]{}]"
    rf"|(?<![\w.])(?P<digits>[0-9][0-9_]{{{MAX_INT_DIGITS},}})(?![0-9_.eE])"
)
_HUGE_MARK = "0.0e-0000000000000000000000000000000"  # a float no one writes


def _load_toml(text: str) -> Any:
    """``tomllib.loads``, with integers over the digit limit read as :class:`HugeInt`.

    tomllib converts every integer with ``int()``, which refuses them with a ValueError that
    names no place; they are re-read as a marker float, so the tree check names their key path.
    """
    import tomllib  # Python 3.11+; only needed here

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise
    except ValueError:
        pass
    digits: list[int] = []

    def mark(match: re.Match[str]) -> str:
        run = match["digits"]
        if run is None or len(run.replace("_", "")) <= MAX_INT_DIGITS:
            return match[0]
        digits.append(len(run.replace("_", "")))
        return _HUGE_MARK

    counts = iter(digits)

    def number(token: str) -> Any:
        if token.lstrip("+-") == _HUGE_MARK:
            return HugeInt(next(counts, None))
        return float(token)

    return tomllib.loads(_TOML_TOKENS.sub(mark, text), parse_float=number)


def _check_loaded(data: Any, file: Path, *, plain: bool = True) -> Any:
    """``data`` once within the bounds (see ``corelib._bounds``); errors name the file."""
    try:
        check_tree(data, plain=plain)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    return data


def save_config(cfg: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``cfg`` to ``path`` (.yaml/.yml, .json or .toml) atomically; return the path.

    Callables become import paths (see :func:`corelib.to_dict`); shared nodes stay shared;
    dicts shaped like the JSON/TOML forms (``_ref_``, ``_none_``, ``_escape_``) are escaped.
    A symlink is followed and the file it names replaced; an existing file keeps its
    permission bits. Raises ConfigError naming the key path of anything that cannot be written.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    writers: dict[str, Callable[[Any], str]] = {
        ".yaml": _dump_yaml,
        ".yml": _dump_yaml,
        ".json": lambda data: json.dumps(_with_refs(data), indent=2) + "\n",
        ".toml": _dump_toml,
    }
    if suffix not in writers:
        raise ConfigError(
            f"{file}: cannot write {quote(suffix or 'files without a suffix')}; "
            f"expected one of {', '.join(writers)}"
        )
    try:
        data = to_dict(cfg)
        depth = check_tree(data)
        with recursion_headroom(depth + 1):
            text = writers[suffix](data)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{file}: cannot write this config as {suffix}: {exc}") from exc
    try:
        _write_atomically(file, text)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot write: {exc}") from exc
    return file


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ConfigError(f"duplicate key {quote(key)} in one object")
        data[key] = value
    return data


def _dump_yaml(data: Any) -> str:
    from corelib._yaml import dump_yaml  # PyYAML loads on first use: `import corelib` stays fast

    return dump_yaml(data)


def _dump_toml(data: Any) -> str:
    if not isinstance(data, dict):
        raise ValueError(f"TOML needs a mapping at the top, got {type(data).__name__}")
    return dumps_toml(_with_refs(data, none_as={NONE_KEY: True}))


def _write_atomically(file: Path, text: str) -> None:
    """Replace the file ``file`` names (following symlinks) with ``text`` in one step.

    The file keeps its permission bits; a new one gets the umask's (the temporary file is
    created with mode 0o666, which the kernel masks).
    """
    import secrets  # first use only: `import corelib` stays fast

    target = Path(os.path.realpath(file))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    stream = os.fdopen(
        os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "w", encoding="utf-8"
    )
    try:
        with stream:
            if mode is not None:
                os.fchmod(stream.fileno(), mode)
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _with_refs(data: Any, *, none_as: Any = None) -> Any:
    """Copy plain ``data`` with later occurrences of shared nodes as ``_ref_`` nodes.

    ``None`` values are written as ``none_as``; dicts shaped like a form are escaped.
    """

    def visit(node: Any, children: Any, location: Location) -> Any:
        if isinstance(children, dict):
            if none_as is not None:
                children = {k: none_as if v is None else v for k, v in children.items()}
            return {ESCAPE_KEY: children} if _needs_escape(children) else children
        if none_as is None:
            return children
        return [none_as if v is None else v for v in children]

    def revisit(node: Any, value: Any, first: Location, location: Location) -> Any:
        keys = first.keys()
        path = format_path(keys, exact=True)
        return {REF_KEY: path if _splits_back(path, keys) else keys}

    return fold(data, visit, revisit=revisit)


def _needs_escape(node: dict[Any, Any]) -> bool:
    """Whether a dict of user data would read back as a form: one key, a form's."""
    return len(node) == 1 and next(iter(node)) in _FORM_KEYS


def _splits_back(path: str, keys: list[Any]) -> bool:
    try:
        return split_path(path) == keys
    except ValueError:
        return False


def _from_plain(data: Any, file: Path, *, with_none_form: bool) -> Any:
    """Turn parsed JSON/TOML (or a .py namespace) into config nodes, resolving ``_ref_`` nodes.

    The dict inside an ``_escape_`` node is taken as it is (not as a form) and replaces it.
    """
    refs: list[tuple[Any, Any, Any, Location]] = []  # (container, key, ref value, location)
    escapes: set[int] = set()  # ids of the _escape_ nodes
    literal: set[int] = set()  # ids of the dicts they hold

    def enter(node: Any, location: Location) -> None:
        if id(node) not in literal and _is_escape(node):
            escapes.add(id(node))
            literal.add(id(node[ESCAPE_KEY]))

    def visit(node: Any, children: Any, location: Location) -> Any:
        if type(node) is tuple:
            return tuple(children)
        if isinstance(children, list):
            items: Any = enumerate(children)
        else:
            if id(node) in escapes:
                return children[ESCAPE_KEY]
            if id(node) not in literal and with_none_form and _is_none(children):
                return None
            children = LazyConfig(children)
            copy_history(node, children)  # a .py node keeps the line of its LazyCall
            items = children.items()
        for key, value in items:
            if isinstance(value, _Ref):
                refs.append((children, key, value.path, location.child(key)))
        if _is_ref(children) and id(node) not in literal:
            return _Ref(children[REF_KEY])
        return children

    try:
        root = fold(data, visit, enter=enter)
    except CycleError as cycle:
        raise ConfigError(f"{file}: {cycle}") from None
    if isinstance(root, _Ref):
        raise ConfigError(f"{file}: the top level cannot be a {REF_KEY!r} node")
    for container, key, path, location in refs:
        container[key] = _follow(root, path, file, location)
    return root


def _is_escape(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and isinstance(node.get(ESCAPE_KEY), dict)


def _is_none(node: dict[Any, Any]) -> bool:
    return len(node) == 1 and node.get(NONE_KEY) is True


class _Ref:
    """Placeholder for a ``_ref_`` node until the whole tree is built."""

    __slots__ = ("path",)

    def __init__(self, path: Any) -> None:
        self.path = path


def _is_ref(node: Any) -> bool:
    return isinstance(node, dict) and REF_KEY in node and len(node) == 1


def _follow(root: Any, path: Any, file: Path, location: Location) -> Any:
    where = f"{file}: {REF_KEY!r} at {quote(str(location))}"
    try:
        keys = split_path(path) if isinstance(path, str) else list(path)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    node = root
    for key in keys:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            raise ConfigError(f"{where}: no node at {quote(path)}") from None
    if isinstance(node, _Ref):
        raise ConfigError(f"{where}: {quote(path)} is itself a reference")
    return node


def _load_python(file: Path) -> tuple[Any, LineOf]:
    """Execute a .py config as a module of a throwaway package holding its directory."""
    package = f"_corelib_config_{next(_package_numbers)}"
    holder = types.ModuleType(package)
    holder.__path__ = [str(file.parent.resolve())]
    holder.__spec__ = ModuleSpec(package, None, is_package=True)
    sys.modules[package] = holder
    try:
        spec = spec_from_file_location(f"{package}.{file.stem}", file)
        assert spec is not None and spec.loader is not None
        module = module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            raise ConfigError(f"{exc.filename}:{exc.lineno}: {exc.msg}") from exc
        except Exception as exc:
            # a failed relative import names the throwaway package: show the directory instead
            text = str(exc).replace(f"'{package}.", f"'{file.parent}{os.sep}")
            raise ConfigError(f"{_where_raised(exc, file)}: {type(exc).__name__}: {text}") from exc
    finally:
        for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
            del sys.modules[name]
    names = {
        name: value
        for name, value in vars(module).items()
        if (not name.startswith("_") or name == BASE_KEY)
        and isinstance(value, (dict, list, tuple, *_SCALARS))
    }
    tree = _check_loaded(
        _from_plain(LazyConfig(names), file, with_none_form=False), file, plain=False
    )
    assigned = _assignment_lines(file)

    def line_of(node: Any, key: Any, location: Location) -> tuple[str | None, int | None]:
        site = site_of(node)
        if site is not None:  # a LazyCall node: where the call was written
            return site
        keys = location.keys()
        return None, assigned.get(keys[0] if keys else key)

    return tree, line_of


def _assignment_lines(file: Path) -> dict[str, int]:
    """The line of the last module-level assignment to each name in a .py config."""
    import ast  # first use only: `import corelib` stays fast

    lines: dict[str, int] = {}
    try:
        module = ast.parse(file.read_bytes(), str(file))
    except (OSError, SyntaxError, ValueError):  # it ran, so this is a race; lines are optional
        return lines
    for statement in module.body:
        targets = (
            statement.targets
            if isinstance(statement, ast.Assign)
            else [statement.target]
            if isinstance(statement, ast.AnnAssign | ast.AugAssign)
            else []
        )
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    lines[name.id] = statement.lineno
    return lines


def _where_raised(exc: BaseException, file: Path) -> str:
    """``file:line`` of the deepest frame in the config's directory, else the file."""
    directory = str(file.parent.resolve())
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if str(Path(frame.filename).resolve()).startswith(directory)
    ]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(file)
