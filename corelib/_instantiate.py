"""``instantiate``: build the objects a config tree describes, children before parents."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import attrs

from corelib._errors import CorelibError, InstantiationError, quote
from corelib._references import Resolver, env_allowance
from corelib._signatures import (
    PLACEHOLDER,
    UNFILLED,
    describe_target,
    keyword_problem,
    placeholders,
    positional_names,
    untrusted_settings,
)
from corelib._text import CAUSE_LIMIT, describe_exception
from corelib._traversal import CycleError, Location, fold, is_container
from corelib._trust import KeyPaths, SafeMode, TrustedPaths, applying, parse_host, safe_mode
from corelib._typing import TypeMismatch, coerce, model_refusal
from corelib.registry import (
    Allow,
    ImportAllowlist,
    TargetError,
    TargetResolver,
    get_plugin_manager,
    make_allowlist,
)

__all__ = ["SPECIAL_KEYS", "instantiate"]

SPECIAL_KEYS = frozenset({"_target_", "_args_", "_partial_", "_recursive_"})
_NODE_ONLY_KEYS = ("_args_", "_partial_", "_recursive_")


def instantiate(
    cfg: Any,
    /,
    *,
    _allow_: Allow = None,
    _trusted_: KeyPaths = None,
    _allow_hosts_: Iterable[str] = (),
    _allow_env_: Iterable[str] | None = None,
    **overrides: Any,
) -> Any:
    """Build the objects described by ``cfg`` (dicts with ``_target_``, lists, tuples).

    Children are built before their parents; a node reached by several paths is built once;
    the input is never mutated. Keyword ``overrides`` replace keys of the root node.
    ``_allow_`` turns on safe mode: only registered components and targets under the given
    import prefixes may be reached (``_allow_=()``: registered components only), and
    trusted-only parameters may be set only at the key paths named in ``_trusted_`` (values
    from outside the untrusted file, e.g. command-line overrides; ``""`` is the root) and by
    keyword ``overrides``. ``_allow_hosts_`` (``HOST`` or ``HOST:PORT``) are the hosts the
    caller names as fit to receive credentials; components read them with
    :func:`corelib.safe_mode`. References (``${a.b}``, see :func:`corelib.resolve`) are
    resolved after the keyword ``overrides`` are applied; ``_allow_env_`` names the environment
    variables ``${env:NAME}`` may read (None: any, but none in safe mode). Called while a
    safe-mode policy is in force (by a component that builds its ``_recursive_: false``
    children), it builds under that policy with nothing
    trusted but ``_trusted_`` and keyword ``overrides``; ``_allow_=None`` cannot leave it, and
    ``_allow_`` / ``_allow_hosts_`` / ``_allow_env_`` may only narrow it. Every failure to build
    is an :class:`InstantiationError` naming the path and the target; a reference that cannot
    be resolved is a :class:`ConfigError` naming the string's path.
    """
    allowlist, policy = _policy(_allow_, _allow_hosts_, _allow_env_)
    trusted = TrustedPaths(_trusted_)
    if overrides:
        if not isinstance(cfg, dict):
            raise InstantiationError(
                f"keyword overrides {sorted(overrides)} need a dict root, got {type(cfg).__name__}"
            )
        cfg = {**cfg, **overrides}
        if policy is not None:  # keyword overrides come from Python: trusted
            trusted = TrustedPaths([*(_trusted_ or ()), *((key,) for key in overrides)])
    env = frozenset(policy.env) if policy is not None else env_allowance(_allow_env_, safe=False)
    references = Resolver(cfg, allow_env=env)
    builder = _Builder(TargetResolver(allowlist), policy, trusted, references)
    try:
        with applying(policy):
            return fold(
                cfg, builder.visit, descend=_descend, enter=builder.enter, refer=references.refer
            )
    except CycleError as cycle:
        raise InstantiationError(
            f"cycle: this reference points back to its ancestor "
            f"{str(cycle.node_location) or '<root>'}",
            path=str(cycle.location),
        ) from None


def _policy(
    allow: Allow, hosts: Iterable[str], env: Iterable[str] | None
) -> tuple[ImportAllowlist | None, SafeMode | None]:
    """The allowlist and policy of one build: the caller's, within the policy in force if any.

    Inside a build or run in safe mode (a component constructing its unbuilt children) the
    policy in force is a ceiling: ``_allow_=None`` builds under it, and an explicit ``_allow_``
    or ``_allow_hosts_`` may narrow it, never widen it. The new policy trusts no keyword.
    """
    outer = safe_mode()
    if outer is None:
        allowlist = make_allowlist(allow)
        if allowlist is None:
            return None, None
        return allowlist, SafeMode(
            allow=allowlist.prefixes,
            hosts=tuple(hosts),
            env=tuple(sorted(env_allowance(env, safe=True) or ())),
        )
    ceiling = ImportAllowlist(outer.allow)
    allowlist = ceiling if allow is None else make_allowlist(allow)
    assert allowlist is not None
    hosts = tuple(hosts)
    wider = [p for p in allowlist.prefixes if not ceiling.allows(p)]
    wider += [h for h in hosts if not outer.allows_host(_as_url(h))]
    names = outer.env if env is None else tuple(env)
    wider += [name for name in names if name not in outer.env]
    if wider:
        raise InstantiationError(
            f"{', '.join(map(quote, wider))}: a build inside safe mode may narrow the policy "
            f"in force, not widen it (allowed prefixes: {', '.join(outer.allow) or 'none'}; "
            f"hosts: {', '.join(outer.hosts) or 'none'}; "
            f"environment variables: {', '.join(outer.env) or 'none'})"
        )
    return allowlist, SafeMode(allow=allowlist.prefixes, hosts=hosts or outer.hosts, env=names)


def _as_url(host: str) -> str:
    """``HOST[:PORT]`` as a URL that :meth:`SafeMode.allows_host` reads (no port: any)."""
    name, port = parse_host(host)
    name = f"[{name}]" if ":" in name else name
    return f"//{name}:{port}" if port is not None else f"//{name}"


def _descend(node: Any) -> bool:
    return not (isinstance(node, dict) and node.get("_recursive_", True) is False)


class _Builder:
    """Builds one node at a time for :func:`fold`; hooks are skipped when nobody implements them."""

    def __init__(
        self,
        resolver: TargetResolver,
        policy: SafeMode | None,
        trusted: TrustedPaths,
        references: Resolver,
    ) -> None:
        self.resolver = resolver
        self.policy = policy
        self.trusted = trusted
        self.references = references
        self._typed = resolver.typed_targets
        self._manager = get_plugin_manager()
        hooks = self._manager.hook
        before = hooks.corelib_before_instantiate
        after = hooks.corelib_after_instantiate
        self._before = before if before.get_hookimpls() else None
        self._after = after if after.get_hookimpls() else None
        if self._before is None:
            self.enter = None  # type: ignore[assignment]

    def enter(self, node: Any, loc: Location) -> None:
        if self._before is not None and isinstance(node, dict) and "_target_" in node:
            try:
                self._before(node=node, path=str(loc))
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # named after its plugin, with the node's path
                failure = self._manager.hook_failure("corelib_before_instantiate", error)
                raise _error(failure, node, loc) from error

    def visit(self, node: Any, children: Any, loc: Location) -> Any:
        if type(children) is list:
            return children if type(node) is list else tuple(children)
        if "_target_" in node:
            return self._build(node, children, loc)
        if "_import_" in node:
            return self._import(node, loc)
        for key in _NODE_ONLY_KEYS:
            if key in node:
                raise InstantiationError(
                    f"{key!r} is only allowed beside '_target_'", path=str(loc)
                )
        return children

    def _import(self, node: dict[str, Any], loc: Location) -> Any:
        if len(node) != 1 or not isinstance(node["_import_"], str):
            raise InstantiationError(
                "an '_import_' node holds exactly one key, '_import_', with an import path string",
                path=str(loc),
            )
        path = node["_import_"]
        try:
            return self.resolver.resolve_object(path)
        except (TargetError, CorelibError) as error:
            raise InstantiationError(str(error), path=str(loc), target=path) from error
        except Exception as error:  # the module's import-time code raised
            raise InstantiationError(
                f"importing raised {_cause(error)}", path=str(loc), target=path, user_error=True
            ) from error

    def _build(self, node: dict[str, Any], children: dict[str, Any] | None, loc: Location) -> Any:
        unbuilt = children is None  # _recursive_: False: the values are passed as written
        if children is None:
            node = self.references.unbuilt(node)  # resolved, but not built
        values = node if children is None else children
        try:
            spec = values["_target_"]
            hit = self._typed.get(spec) if type(spec) is str else None
            target, hints = hit or self.resolver.resolve_with_types(spec)
        except (TargetError, CorelibError) as error:
            raise _error(str(error), node, loc) from error
        except Exception as error:  # a module's import-time code or a resolve hook raised
            message = f"resolving the target raised {_cause(error)}"
            raise _error(message, node, loc, user_error=True) from error
        if children is None:
            children = {k: v for k, v in node.items() if k not in SPECIAL_KEYS}
            args = node.get("_args_", ())
        else:
            del children["_target_"]
            args = children.pop("_args_", ()) if "_args_" in node else ()
        partial = False
        if "_partial_" in node or "_recursive_" in node:
            partial = values.get("_partial_", False)
            recursive = values.get("_recursive_", True)
            children.pop("_partial_", None)
            children.pop("_recursive_", None)
            if type(partial) is not bool:
                raise _error(f"'_partial_' must be true or false, got {quote(partial)}", node, loc)
            if type(recursive) is not bool:
                message = f"'_recursive_' must be true or false, got {quote(recursive)}"
                raise _error(message, node, loc)
            if recursive is False and not unbuilt:  # the walk went by what is written
                message = "'_recursive_' must be written as false, not as a reference"
                raise _error(message, node, loc)
        if type(args) not in (list, tuple):
            message = f"'_args_' must be a list, got {type(args).__name__} {quote(args)}"
            raise _error(message, node, loc)
        for value in children.values():  # inline: this runs for every node
            if value.__class__ is str and value == PLACEHOLDER:
                raise _unfilled(args, children, node, loc)
        if args and placeholders(args, {}):
            raise _unfilled(args, children, node, loc)
        policy = None
        if self.policy is not None:  # before _fit_types structures what the file wrote
            policy = self._node_policy(target, args, children, node, loc)
        if hints:
            args, children = _fit_types(target, hints, args, children, node, loc, unbuilt=unbuilt)
        if partial:
            problem = keyword_problem(target, (), children, partial=True)
            if problem:
                raise _error(problem, node, loc)
            obj = functools.partial(target, *args, **children)
        else:
            try:
                if policy is None:
                    obj = target(*args, **children)
                else:
                    with applying(policy):
                        obj = target(*args, **children)
            except Exception as error:
                problem = (
                    keyword_problem(target, args, children)
                    if isinstance(error, TypeError)
                    else None
                )
                if problem:
                    raise _error(problem, node, loc) from error
                mismatch = model_refusal(target, children, error)
                if mismatch is not None:  # a pydantic model target refused its keywords
                    raise _type_error(mismatch, node, loc) from error
                # A CorelibError is the component refusing a setting (exit 2), not a crash.
                user_error = not isinstance(error, CorelibError)
                raise _error(_cause(error), node, loc, user_error=user_error) from error
        if self._after is not None:
            try:
                for replacement in self._after(obj=obj, node=node, path=str(loc)):
                    if replacement is not None:
                        return replacement
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # named after its plugin, with the node's path
                failure = self._manager.hook_failure("corelib_after_instantiate", error)
                raise _error(failure, node, loc) from error
        return obj

    def _node_policy(
        self,
        target: Any,
        args: list[Any] | tuple[Any, ...],
        kwargs: dict[str, Any],
        node: dict[str, Any],
        loc: Location,
    ) -> SafeMode:
        """The policy this node is built under (its keywords set from outside the file), after
        refusing a trusted-only parameter that the untrusted file set."""
        assert self.policy is not None
        refused = untrusted_settings(target, args, kwargs, loc, self.trusted)
        if refused:
            where, message = refused[0]
            raise _error(message, node, where)
        if not self.trusted:
            return self.policy
        trusted = frozenset(name for name in kwargs if self.trusted.covers(loc.child(name)))
        return attrs.evolve(self.policy, trusted=trusted)


def _fit_types(
    target: Any,
    hints: dict[str, Any],
    args: list[Any] | tuple[Any, ...],
    kwargs: dict[str, Any],
    node: dict[str, Any],
    loc: Location,
    *,
    unbuilt: bool,
) -> tuple[list[Any] | tuple[Any, ...], dict[str, Any]]:
    """Check and structure each value against its annotation; with ``unbuilt`` (the node has
    ``_recursive_: false``) containers are config nodes, not the objects, and are left alone."""
    for name, value in kwargs.items():
        tp = hints.get(name)
        if tp is not None and not (unbuilt and is_container(value)):
            try:
                kwargs[name] = coerce(value, tp)
            except TypeMismatch as mismatch:
                raise _type_error(mismatch, node, loc.child(name)) from mismatch
    if args:
        names = positional_names(target)
        fitted = list(args)
        for index, (name, value) in enumerate(zip(names, args, strict=False)):
            tp = hints.get(name)
            if tp is not None and not (unbuilt and is_container(value)):
                try:
                    fitted[index] = coerce(value, tp)
                except TypeMismatch as mismatch:
                    where = loc.child("_args_").child(index)
                    raise _type_error(mismatch, node, where) from mismatch
        args = fitted
    return args, kwargs


def _unfilled(
    args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any], node: dict[str, Any], loc: Location
) -> InstantiationError:
    """The error for the first argument still :data:`PLACEHOLDER` (``describe --yaml``'s)."""
    key = placeholders(args, kwargs)[0]
    where = loc.child(key) if isinstance(key, str) else loc.child("_args_").child(key)
    return _error(UNFILLED, node, where)


def _type_error(mismatch: TypeMismatch, node: dict[str, Any], loc: Location) -> InstantiationError:
    for key in mismatch.keys:
        loc = loc.child(key)
    return _error(str(mismatch), node, loc)


def _error(
    message: str, node: dict[str, Any], loc: Location, *, user_error: bool = False
) -> InstantiationError:
    return InstantiationError(
        message, path=str(loc), target=describe_target(node.get("_target_")), user_error=user_error
    )


def _cause(error: BaseException) -> str:
    """The cause's type and message, cut to a bounded length (the full text stays on it)."""
    return describe_exception(error, CAUSE_LIMIT)
