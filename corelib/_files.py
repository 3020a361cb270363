"""Config files: ``load_config`` and ``save_config`` for .py, .yaml/.yml, .json and .toml.

Shared nodes survive a round trip. YAML writes them as anchors and aliases. JSON and TOML write
the first occurrence in full and every later one as ``{"_ref_": "model.blocks[3]"}``, the path
of the first occurrence (a list of keys where a key would not read back from a path string);
loading puts the one object back at every reference. TOML has no null: ``None`` is written as
``{"_none_": true}``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import traceback
import types
from collections.abc import Callable, Iterator
from importlib.machinery import ModuleSpec
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

from corelib._errors import ConfigError, a_type
from corelib._lazy import LazyConfig
from corelib._overrides import split_path
from corelib._plain import to_dict
from corelib._toml import dumps_toml
from corelib._traversal import CycleError, Location, fold, format_path

__all__ = ["load_config", "save_config"]

REF_KEY = "_ref_"
NONE_KEY = "_none_"
_LOADABLE = (".py", ".yaml", ".yml", ".json", ".toml")
_SCALARS = (str, int, float, bool, type(None))
_package_numbers = itertools.count()


def load_config(path: str | os.PathLike[str]) -> Any:
    """Read a config file: a tree of :class:`LazyConfig` nodes, lists and scalars.

    ``.py`` files (detectron2 style) contribute their public module-level names whose values
    are config nodes, dicts, lists or scalars, and may import from sibling files
    (``from .base import model``). Raises ConfigError naming the file (and line) on failure.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in _LOADABLE:
        raise ConfigError(
            f"{file}: unknown config file type {suffix or '(none)'!r}; "
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
    with _recursion_headroom(_MAX_DEPTH):
        return _parse(text, file, suffix)


def _parse(text: str, file: Path, suffix: str) -> Any:
    if suffix in (".yaml", ".yml"):
        from corelib._yaml import load_yaml  # PyYAML loads on first use: import corelib is fast

        data = load_yaml(text, str(file), mapping=LazyConfig)
        return LazyConfig() if data is None else data
    if suffix == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            message = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
            raise ConfigError(f"{file}: {message}") from exc
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc}") from exc
        return _from_plain(data, file, with_none_form=False)
    import tomllib  # Python 3.11+; only needed here

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    return _from_plain(data, file, with_none_form=True)


def save_config(cfg: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``cfg`` to ``path`` (.yaml/.yml, .json or .toml) atomically; return the path.

    Callables become import paths (see :func:`corelib.to_dict`); shared nodes stay shared.
    Raises ConfigError naming the key path of anything that cannot be written.
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
            f"{file}: cannot write {suffix or 'files without a suffix'!r}; "
            f"expected one of {', '.join(writers)}"
        )
    try:
        data = to_dict(cfg)
        depth = _check_writable(data)
        if suffix in (".yaml", ".yml") and depth > _MAX_YAML_DEPTH:
            raise ConfigError(
                f"the tree is {depth} levels deep; YAML files load back only up to "
                f"{_MAX_YAML_DEPTH} levels (libyaml's limit): write .json or .toml instead"
            )
        with _recursion_headroom(depth):
            text = writers[suffix](data)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{file}: cannot write this config as {suffix}: {exc}") from exc
    _write_atomically(file, text)
    return file


_MAX_DEPTH = 5_000
_MAX_YAML_DEPTH = 900


def _check_writable(data: Any) -> int:
    """Refuse leaves and keys a config file cannot hold (naming the path); return the depth."""
    depths: dict[int, int] = {}

    def visit(node: Any, children: Any, loc: Location) -> Any:
        pairs = children.items() if isinstance(children, dict) else enumerate(children)
        depth = 1
        for key, value in pairs:
            if isinstance(node, dict) and not isinstance(key, str):
                raise ConfigError(f"{loc.child(key)}: keys must be strings, got {key!r}")
            if id(value) in depths:
                depth = max(depth, depths[id(value)] + 1)
            elif not isinstance(value, _SCALARS) and not isinstance(value, (dict, list)):
                raise ConfigError(
                    f"{loc.child(key)}: cannot write {a_type(value)} ({value!r}); "
                    f"config files hold dicts, lists, strings, numbers, booleans and null"
                )
        depths[id(node)] = depth
        return node

    fold(data, visit)
    return depths.get(id(data), 0)


@contextlib.contextmanager
def _recursion_headroom(depth: int) -> Iterator[None]:
    """The YAML/JSON/TOML libraries recurse per level: give deep trees room, within a bound."""
    if depth > _MAX_DEPTH:
        raise ConfigError(f"the tree is {depth} levels deep; files hold at most {_MAX_DEPTH}")
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 8 * depth + 1_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ConfigError(f"duplicate key {key!r} in one object")
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
    import tempfile  # first use only: `import corelib` stays fast

    file.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _with_refs(data: Any, *, none_as: Any = None) -> Any:
    """Copy plain ``data`` with later occurrences of shared nodes as ``_ref_`` nodes.

    ``None`` values are written as ``none_as``.
    """

    def visit(node: Any, children: Any, location: Location) -> Any:
        if none_as is None:
            return children
        if isinstance(children, dict):
            return {k: none_as if v is None else v for k, v in children.items()}
        return [none_as if v is None else v for v in children]

    def revisit(node: Any, value: Any, first: Location, location: Location) -> Any:
        keys = first.keys()
        path = format_path(keys)
        return {REF_KEY: path if _splits_back(path, keys) else keys}

    return fold(data, visit, revisit=revisit)


def _splits_back(path: str, keys: list[Any]) -> bool:
    try:
        return split_path(path) == keys
    except ValueError:
        return False


def _from_plain(data: Any, file: Path, *, with_none_form: bool) -> Any:
    """Turn parsed JSON/TOML (or a .py namespace) into config nodes, resolving ``_ref_`` nodes."""
    refs: list[tuple[Any, Any, Any, Location]] = []  # (container, key, ref value, location)

    def visit(node: Any, children: Any, location: Location) -> Any:
        if type(node) is tuple:
            return tuple(children)
        if isinstance(children, list):
            items: Any = enumerate(children)
        else:
            if with_none_form and children == {NONE_KEY: True}:
                return None
            children = LazyConfig(children)
            items = children.items()
        for key, value in items:
            if isinstance(value, _Ref):
                refs.append((children, key, value.path, location.child(key)))
        return _Ref(children[REF_KEY]) if _is_ref(children) else children

    try:
        root = fold(data, visit)
    except CycleError as cycle:
        raise ConfigError(f"{file}: {cycle}") from None
    if isinstance(root, _Ref):
        raise ConfigError(f"{file}: the top level cannot be a {REF_KEY!r} node")
    for container, key, path, location in refs:
        container[key] = _follow(root, path, file, location)
    return root


class _Ref:
    """Placeholder for a ``_ref_`` node until the whole tree is built."""

    __slots__ = ("path",)

    def __init__(self, path: Any) -> None:
        self.path = path


def _is_ref(node: Any) -> bool:
    return isinstance(node, dict) and REF_KEY in node and len(node) == 1


def _follow(root: Any, path: Any, file: Path, location: Location) -> Any:
    where = f"{file}: {REF_KEY!r} at {str(location)!r}"
    try:
        keys = split_path(path) if isinstance(path, str) else list(path)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    node = root
    for key in keys:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            raise ConfigError(f"{where}: no node at {path!r}") from None
    if isinstance(node, _Ref):
        raise ConfigError(f"{where}: {path!r} is itself a reference")
    return node


def _load_python(file: Path) -> Any:
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
        if not name.startswith("_") and isinstance(value, (dict, list, tuple, *_SCALARS))
    }
    return _from_plain(LazyConfig(names), file, with_none_form=False)


def _where_raised(exc: BaseException, file: Path) -> str:
    """``file:line`` of the deepest frame in the config's directory, else the file."""
    directory = str(file.parent.resolve())
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if str(Path(frame.filename).resolve()).startswith(directory)
    ]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(file)
