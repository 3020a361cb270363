"""Registry, plugin loading and target resolution: names, entry points and import paths.

The rest of corelib imports these names from here; users import them from ``corelib``.
Dependencies run one way: ``_registry`` (the data) and ``_discovery`` (installed entry points)
<- ``_plugins`` (the pluggy manager that fills the registry) <- ``_global`` (the process-wide
registry and manager) <- ``_resolver`` (targets of a build or check, with ``_targets`` for
import paths and safe mode).
"""

from corelib.registry._discovery import ENTRY_POINT_GROUP, PluginReport
from corelib.registry._global import get_plugin_manager, isolated, register, registry, reset
from corelib.registry._plugins import (
    ENV_BLOCK,
    ENV_DISABLE_AUTOLOAD,
    ENV_STRICT,
    CorelibPluginManager,
    autoload_disabled,
    strict_plugins,
)
from corelib.registry._registry import KINDS, LOCAL_PLUGIN, Entry, PluginRegistrar, Registry
from corelib.registry._resolver import Allow, TargetResolver, make_allowlist
from corelib.registry._targets import (
    ImportAllowlist,
    TargetError,
    import_object,
    import_path_of,
    is_registry_name,
    module_of,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_BLOCK",
    "ENV_DISABLE_AUTOLOAD",
    "ENV_STRICT",
    "KINDS",
    "LOCAL_PLUGIN",
    "Allow",
    "CorelibPluginManager",
    "Entry",
    "ImportAllowlist",
    "PluginRegistrar",
    "PluginReport",
    "Registry",
    "TargetError",
    "TargetResolver",
    "autoload_disabled",
    "get_plugin_manager",
    "import_object",
    "import_path_of",
    "is_registry_name",
    "isolated",
    "make_allowlist",
    "module_of",
    "register",
    "registry",
    "reset",
    "strict_plugins",
]
