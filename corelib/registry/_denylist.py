"""The deny list: callables safe mode refuses whatever prefix is allowed.

An allowed prefix trusts its package to be *constructed*, not every callable in it. The names
below load code or pickles, run commands, evaluate strings, or reach any attribute or module
by name: from an untrusted file each one is code execution. The list is data: one dotted name
per entry; an entry denies itself and everything under it on dotted boundaries (``"pickle"``
denies ``"pickle.loads"``). It is matched against the spelled path, the resolved object's real
name (``__module__`` + ``__qualname__``) and, by identity, against every entry whose module is
already imported, so an alias (``numpy.load`` re-exported elsewhere, ``os.system`` reached as
``posix.system``) is refused too. Nothing is imported to check it. No list is complete: allow
the narrowest prefixes that work (docs/safe-mode.md).
"""

from __future__ import annotations

import sys
from types import MethodType, ModuleType
from typing import Any

__all__ = ["DENIED", "denied_name", "denied_object"]

DENIED: tuple[str, ...] = (
    # Evaluators of strings (Python source, annotations, expressions, templates).
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.breakpoint",
    "builtins.input",
    "builtins.help",
    "typing.get_type_hints",
    "typing.ForwardRef",
    "typing.evaluate_forward_ref",
    "typing_extensions.get_type_hints",
    "typing_extensions.evaluate_forward_ref",
    "typing_extensions.get_annotations",
    "inspect",
    "annotationlib",
    "dataclasses.make_dataclass",
    "attr.make_class",
    "attrs.make_class",
    "pydantic.create_model",
    "pydantic.TypeAdapter",
    "code",
    "codeop",
    "timeit",
    "trace",
    "profile",
    "cProfile",
    "pdb",
    "bdb",
    "doctest",
    "tkinter",
    "compileall",
    "py_compile",
    "pandas.eval",
    "numexpr",
    "sympy.sympify",
    "sympy.parse_expr",
    "sympy.parsing",
    "jinja2",
    # Any module, attribute or native code by name.
    "builtins.__import__",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.globals",
    "builtins.locals",
    "builtins.vars",
    "operator.attrgetter",
    "operator.methodcaller",
    "importlib",
    "imp",
    "zipimport",
    "pkgutil",
    "runpy",
    "site",
    "unittest",
    "pytest",
    "logging.config",
    "gc",
    "ctypes",
    "_ctypes",
    "cffi",
    "sys.settrace",
    "sys.setprofile",
    "sys.addaudithook",
    "sys.breakpointhook",
    # Pickles and other loaders of objects from bytes.
    "pickle",
    "_pickle",
    "cPickle",
    "marshal",
    "shelve",
    "dill",
    "cloudpickle",
    "jsonpickle",
    "joblib.load",
    "joblib.numpy_pickle",
    "numpy.load",
    "numpy.lib.npyio",
    "numpy.ctypeslib",
    "numpy.f2py",
    "pandas.read_pickle",
    "pandas.io.pickle",
    "yaml.load",
    "yaml.load_all",
    "yaml.full_load",
    "yaml.full_load_all",
    "yaml.unsafe_load",
    "yaml.unsafe_load_all",
    "yaml.Loader",
    "yaml.FullLoader",
    "yaml.UnsafeLoader",
    # torch: pickles, hub and library loaders, compilers of source, process launchers.
    "torch.load",
    "torch.serialization",
    "torch.hub",
    "torch.jit.load",
    "torch.jit.CompilationUnit",
    "torch.package",
    "torch.export.load",
    "torch.compiler.load_cache_artifacts",
    "torch.utils.model_zoo",
    "torch.utils.cpp_extension",
    "torch.utils.collect_env",
    "torch.utils.bottleneck",
    "torch.utils.data.datapipes",
    "torch.ops.load_library",
    "torch._ops._Ops.load_library",
    "torch.classes.load_library",
    "torch._classes._Classes.load_library",
    "torch.multiprocessing",
    "torch.distributed.run",
    "torch.distributed.launch",
    "torch.distributed.launcher",
    "torch.distributed.elastic",
    "torch.distributed.rpc",
    "torch.distributed.checkpoint",
    # Model hubs: they download, unpickle, or run code shipped with a model.
    "huggingface_hub",
    "transformers.dynamic_module_utils",
    "transformers.pipeline",
    "transformers.pipelines",
    # Commands, processes, and exits of this one.
    "subprocess",
    "_posixsubprocess",
    "_winapi",
    "pty",
    "multiprocessing",
    "concurrent.futures.process",
    "asyncio.subprocess",
    "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell",
    "pydoc",
    "webbrowser",
    "distutils",
    "setuptools",
    "pip",
    "ensurepip",
    "venv",
    "os.system",
    "os.popen",
    "os.execl",
    "os.execle",
    "os.execlp",
    "os.execlpe",
    "os.execv",
    "os.execve",
    "os.execvp",
    "os.execvpe",
    "os.spawnl",
    "os.spawnle",
    "os.spawnlp",
    "os.spawnlpe",
    "os.spawnv",
    "os.spawnve",
    "os.spawnvp",
    "os.spawnvpe",
    "os.posix_spawn",
    "os.posix_spawnp",
    "os.fork",
    "os.forkpty",
    "os.register_at_fork",
    "os.startfile",
    "os.kill",
    "os.killpg",
    "os.abort",
    "builtins.exit",
    "builtins.quit",
    "sys.exit",
    # Their kin: the files and environment that code and commands are later read from.
    "builtins.open",
    "io.open",
    "io.open_code",
    "io.FileIO",
    "codecs.open",
    "os.open",
    "os.fdopen",
    "os.write",
    "os.remove",
    "os.unlink",
    "os.rename",
    "os.renames",
    "os.replace",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.lchown",
    "os.symlink",
    "os.link",
    "os.rmdir",
    "os.removedirs",
    "os.chdir",
    "os.chroot",
    "pathlib.Path.open",
    "pathlib.Path.write_text",
    "pathlib.Path.write_bytes",
    "shutil",
    "os.putenv",
    "os.unsetenv",
    "os.environ",
    "pathlib.Path.touch",
    "pathlib.Path.unlink",
    "pathlib.Path.rename",
    "pathlib.Path.replace",
    "pathlib.Path.symlink_to",
    "pathlib.Path.hardlink_to",
    "pathlib.Path.chmod",
    "tarfile",
    "zipfile",
    # Readers and writers of files (or URLs) by name in the libraries configs allow most: a
    # file could read a secret to send it on, or write a .pth, a shell profile or a module.
    "numpy.testing",
    "numpy.distutils",
    "numpy.save",
    "numpy.savez",
    "numpy.savez_compressed",
    "numpy.savetxt",
    "numpy.loadtxt",
    "numpy.genfromtxt",
    "numpy.fromfile",
    "numpy.fromregex",
    "numpy.memmap",
    "numpy.DataSource",
    "numpy.lib.format",
    "numpy.ndarray.tofile",
    "numpy.ndarray.dump",
    "numpy.rec.fromfile",
    "pandas.io",
    "pandas.core.generic.NDFrame.to_csv",
    "pandas.core.generic.NDFrame.to_json",
    "pandas.core.generic.NDFrame.to_hdf",
    "pandas.core.generic.NDFrame.to_excel",
    "pandas.core.generic.NDFrame.to_pickle",
    "pandas.core.generic.NDFrame.to_sql",
    "pandas.core.generic.NDFrame.to_clipboard",
    "pandas.core.generic.NDFrame.to_latex",
    "pandas.core.frame.DataFrame.to_parquet",
    "pandas.core.frame.DataFrame.to_feather",
    "pandas.core.frame.DataFrame.to_orc",
    "pandas.core.frame.DataFrame.to_stata",
    "pandas.core.frame.DataFrame.to_html",
    "pandas.core.frame.DataFrame.to_xml",
    "pandas.core.frame.DataFrame.to_markdown",
    "pandas.core.frame.DataFrame.to_string",
    "torch.save",
    "torch.from_file",
    "torch.UntypedStorage.from_file",
    "torch.TypedStorage.from_file",
    # Network clients: what a file reads it could send to a host of its choosing.
    "socket",
    "_socket",
    "ssl",
    "urllib.request",
    "http.client",
    "ftplib",
    "smtplib",
    "poplib",
    "imaplib",
    "telnetlib",
    "xmlrpc",
    "requests",
    "httpx",
    "urllib3",
    "aiohttp",
)
"""Dotted names safe mode refuses under any allowed prefix (see the module docstring)."""


def denied_name(dotted: str) -> str | None:
    """The entry that denies the dotted name ``dotted`` (spelled, or an object's real name)."""
    for entry in DENIED:
        if dotted == entry or dotted.startswith(entry + "."):
            return entry
    return None


def denied_object(obj: Any, real_name: str) -> str | None:
    """The entry that denies ``obj``: by its ``real_name`` (``module.qualname``), or by identity
    with an entry whose module is already imported (nothing is imported here)."""
    entry = denied_name(real_name)
    if entry is not None:
        return entry
    for entry in DENIED:
        denied = _loaded(entry)
        if denied is not None and _same(obj, denied):
            return entry
    return None


def _loaded(entry: str) -> Any:
    """The object ``entry`` names when its module is imported already; None otherwise."""
    parts = entry.split(".")
    for end in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:end]))
        if module is not None:
            obj: Any = module
            for attr in parts[end:]:  # a module's own dict: no lazy __getattr__ imports
                if isinstance(obj, ModuleType):
                    obj = vars(obj).get(attr)
                else:
                    obj = getattr(obj, attr, None)
                if obj is None:
                    return None
            return obj
    return None


def _same(obj: Any, denied: Any) -> bool:
    if obj is denied:
        return True
    return isinstance(obj, MethodType) and isinstance(denied, MethodType) and obj == denied
