"""Fingerprints of ``preprocess=`` callables for the feature cache key.

A callable is keyed by what it computes, not by its name: a function by its byte code,
constants (nested functions and lambdas included), default arguments, the values in its
closure and the values of the global names it reads; a ``functools.partial`` by its
function and arguments; a bound method by its function and its object; a callable object
by its class and its attributes. Values are keyed by their content: numbers, strings,
bytes, None, containers of them, numpy arrays and torch tensors (dtype, shape and bytes),
torch modules by their weights, and callables recursively. Code of installed packages
(the standard library, site-packages: numpy, torch...) is keyed by its qualified name and
the package's version, user code (a script, a notebook, a project folder) by its content.
Anything else (an open file, a compiled object without attributes, nesting deeper than
12 levels) cannot be keyed: :class:`Unfingerprintable` is raised, and the extractor asks
for an explicit ``cache_key=``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import sysconfig
import types
from typing import Any

_MAX_DEPTH = 12
_SIMPLE = (int, float, complex, str, bytes, bool, type(None))


class Unfingerprintable(TypeError):
    """A value in a callable's code, closure or globals that has no stable content key."""


def fingerprint(obj: Any) -> str:
    """SHA-256 (hex) of a callable's behaviour-relevant content.

    Examples
    --------
    >>> scale = 2
    >>> fingerprint(lambda x: x * scale) == fingerprint(lambda x: x * scale)
    True
    >>> fingerprint(lambda x: x * 2) == fingerprint(lambda x: x * 3)
    False
    """
    h = hashlib.sha256()
    _feed(h, obj, 0, set())
    return h.hexdigest()


def _feed(h, obj: Any, depth: int, seen: set) -> None:
    if depth > _MAX_DEPTH:
        raise Unfingerprintable(f"{_qualname(obj)} is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(obj, _SIMPLE):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
        return
    if id(obj) in seen:
        h.update(b"<cycle>")
        return
    seen = seen | {id(obj)}
    if isinstance(obj, (tuple, list, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        h.update(f"{type(obj).__name__}[{len(obj)}](".encode())
        for item in items:
            _feed(h, item, depth + 1, seen)
        h.update(b")")
        return
    if isinstance(obj, dict):
        h.update(f"dict[{len(obj)}](".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k, depth + 1, seen)
            _feed(h, obj[k], depth + 1, seen)
        h.update(b")")
        return
    if isinstance(obj, types.ModuleType):
        h.update(f"module:{obj.__name__};".encode())
        return
    if isinstance(obj, types.CodeType):
        _feed_code(h, obj, depth, seen)
        return
    if _is_array(obj):
        _feed_array(h, obj)
        return
    if isinstance(obj, functools.partial):
        h.update(b"partial(")
        for part in (obj.func, obj.args, obj.keywords):
            _feed(h, part, depth + 1, seen)
        h.update(b")")
        return
    if not _is_user_code(obj) and (callable(obj) or isinstance(obj, type)):
        h.update(f"library:{_qualname(obj)}@{_version(obj)};".encode())
        if not isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type)) and hasattr(obj, "__dict__"):
            _feed_object_state(h, obj, depth, seen)  # a library object: its class by name, its state by content
        return
    if isinstance(obj, types.MethodType):
        h.update(b"method(")
        _feed(h, obj.__func__, depth + 1, seen)
        _feed(h, obj.__self__, depth + 1, seen)
        h.update(b")")
        return
    if isinstance(obj, types.FunctionType):
        _feed_function(h, obj, depth, seen)
        return
    if isinstance(obj, type):
        h.update(f"class:{_qualname(obj)}(".encode())
        for name in sorted(vars(obj)):
            if isinstance(vars(obj)[name], (types.FunctionType, staticmethod, classmethod, property)):
                h.update(name.encode())
                value = vars(obj)[name]
                _feed(h, getattr(value, "__func__", getattr(value, "fget", value)), depth + 1, seen)
        h.update(b")")
        return
    _feed_object(h, obj, depth, seen)


def _feed_code(h, code: types.CodeType, depth: int, seen: set) -> None:
    h.update(b"code(")
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars, code.co_argcount,
                   code.co_kwonlyargcount, code.co_flags)).encode())
    for const in code.co_consts:
        _feed(h, const, depth + 1, seen)
    h.update(b")")


def _feed_function(h, fn: types.FunctionType, depth: int, seen: set) -> None:
    h.update(b"function(")
    _feed_code(h, fn.__code__, depth, seen)
    _feed(h, fn.__defaults__, depth + 1, seen)
    _feed(h, fn.__kwdefaults__, depth + 1, seen)
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            value = None
        h.update(f"free:{name}=".encode())
        _feed(h, value, depth + 1, seen)
    for name in _global_names(fn.__code__):
        if name in fn.__globals__:
            h.update(f"global:{name}=".encode())
            _feed(h, fn.__globals__[name], depth + 1, seen)
    h.update(b")")


def _global_names(code: types.CodeType) -> list[str]:
    """Names a code object (and its nested code objects) may read from the globals."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= set(_global_names(const))
    return sorted(names)


def _feed_object(h, obj: Any, depth: int, seen: set) -> None:
    if getattr(obj, "__dict__", None) is None:
        raise Unfingerprintable(
            f"{_qualname(obj)} ({type(obj).__name__} object) has no content brainalign can key: it is neither a "
            "function, a partial, a method, a number/string/array nor an object with attributes"
        )
    h.update(b"object(")
    _feed(h, type(obj), depth + 1, seen)
    _feed_object_state(h, obj, depth, seen)
    h.update(b")")


def _feed_object_state(h, obj: Any, depth: int, seen: set) -> None:
    state = dict(vars(obj))
    if _is_module(obj):
        for name, tensor in obj.state_dict().items():
            h.update(name.encode())
            _feed_array(h, tensor)
        state = {k: v for k, v in state.items() if not k.startswith("_")}
    _feed(h, state, depth + 1, seen)


def _library_paths() -> tuple[str, ...]:
    paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {p for p in sys.path if "site-packages" in p or "dist-packages" in p}
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


def _is_user_code(obj: Any) -> bool:
    """False for code of the standard library and installed packages (by the file of its module)."""
    if isinstance(obj, types.BuiltinFunctionType):
        return False
    target = obj.__func__ if isinstance(obj, types.MethodType) else obj
    name = getattr(target, "__module__", None) or type(target).__module__
    if name == "builtins" or (name or "").split(".")[0] in sys.builtin_module_names:
        return False
    module = sys.modules.get(name or "")
    file = getattr(module, "__file__", None)
    if name == "__main__" or module is None or file is None:
        return True
    return not os.path.realpath(file).startswith(_library_paths())


def _version(obj: Any) -> str:
    name = (getattr(obj, "__module__", None) or type(obj).__module__ or "").split(".")[0]
    module = sys.modules.get(name)
    version = getattr(module, "__version__", None)
    if version is None and name not in sys.builtin_module_names:
        version = sys.version.split()[0]
    return str(version)


def _is_array(obj: Any) -> bool:
    mod = type(obj).__module__
    return (mod == "numpy" and type(obj).__name__ == "ndarray") or type(obj).__name__ == "Tensor" and \
        mod.startswith("torch") or (mod == "numpy" and hasattr(obj, "dtype") and hasattr(obj, "tobytes"))


def _feed_array(h, arr: Any) -> None:
    import numpy as np

    if type(arr).__module__.startswith("torch"):
        arr = arr.detach().to("cpu")
        h.update(f"tensor{tuple(arr.shape)}{arr.dtype};".encode())
        import torch

        arr = arr.contiguous().reshape(-1).view(torch.uint8).numpy()
        h.update(memoryview(arr))
        return
    a = np.ascontiguousarray(arr)
    h.update(f"array{a.shape}{a.dtype};".encode())
    if a.dtype == object:
        raise Unfingerprintable("an array of Python objects cannot be keyed by its bytes")
    h.update(a.tobytes())


def _is_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(obj).__mro__)


def _qualname(obj: Any) -> str:
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{mod}.{name}"
