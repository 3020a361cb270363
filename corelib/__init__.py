"""corelib: configs (trees of dicts with ``_target_``) that become objects through ``instantiate``.

Every public name lives here; the modules behind it are private.
"""

from corelib._check import Problem, check
from corelib._errors import (
    ConfigError,
    CorelibError,
    InstantiationError,
    PluginError,
    RegistryError,
)
from corelib._files import load_config, save_config
from corelib._instantiate import instantiate
from corelib._lazy import L, LazyCall, LazyConfig
from corelib._overrides import apply_overrides
from corelib._plain import to_dict
from corelib._provenance import explain
from corelib._references import resolve
from corelib._trust import SafeMode, Trusted, safe_mode
from corelib.hooks import hookimpl, hookspec
from corelib.registry import get_plugin_manager, register, registry

__all__ = [
    "ConfigError",
    "CorelibError",
    "InstantiationError",
    "L",
    "LazyCall",
    "LazyConfig",
    "PluginError",
    "Problem",
    "RegistryError",
    "SafeMode",
    "Trusted",
    "apply_overrides",
    "check",
    "explain",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "instantiate",
    "load_config",
    "register",
    "registry",
    "resolve",
    "safe_mode",
    "save_config",
    "to_dict",
]
