"""The cache key of `train.fit(..., checkpoint="name")`: a digest of everything that shapes a training run, each
described by value (lecturelib.checkpoints stores the models under it).

What it covers: the model (its class's code, its settings and its initial weights, byte for byte: another seed before
building it is another key), the training and test data (their bytes, in order), every fit setting, the training loop
(train.py's bytes), and the loss function with everything it reads (its code, the code of the functions it calls at
any depth, their defaults, keyword-only ones too, and the values of the globals and closure variables they read;
tensors and arrays by their bytes). Code counts as Python parses it: a comment, a blank line or another layout of the
same statements is the same code (a solution handed in without its `### BEGIN SOLUTION` lines finds the model its
instructor's run cached). Something it cannot describe by value (a generator, a file, an object with no __dict__)
means no caching, said in fit's line, never a guess; `fit(..., key="...")` names the run instead.
"""

from __future__ import annotations

import ast
import builtins
import dis
import enum
import functools
import hashlib
import inspect
import json
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

KEY_VERSION = 5  # raise it when what the key covers changes, so that older files are not read as current
_LOOP_FILE = Path(__file__).resolve().parent / "train.py"  # the loop itself: any change to it retrains


class NotDescribable(ValueError):
    """Something that shapes the training cannot be described by value, so a cached model could be stale."""


def cache_key(model: nn.Module, loss_fn, train: tuple, test: tuple | None, settings: dict) -> str:
    """A digest of everything that shapes a training run (the module docstring lists it); call it before training,
    while the model holds its initial weights. Raises NotDescribable, naming what it could not describe."""
    from lecturelib.data import Batches

    parts: list[str] = [f"key {KEY_VERSION}", json.dumps(settings, sort_keys=True)]
    for what, obj in (
        ("the model", model),
        ("the training data", train),
        ("the test data", test),
        ("the loss function", loss_fn),
        ("data.Batches", Batches),
    ):
        parts.append(what)
        _describe(obj, parts, {}, what, 0)
    parts.append(hashlib.sha256(_LOOP_FILE.read_bytes()).hexdigest())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def digest(obj) -> str:
    """A digest of `obj` described by value as the key describes it (raises NotDescribable where it cannot)."""
    out: list[str] = []
    _describe(obj, out, {}, "the object", 0)
    return hashlib.sha256("\n".join(out).encode()).hexdigest()[:16]


def given_key(key: str) -> str:
    """The file-name part for a key the caller names (fit's `key=`)."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty string naming the run, got {key!r}")
    return hashlib.sha256(f"key {KEY_VERSION}\ngiven {key}".encode()).hexdigest()[:12]


def tensor_digest(t: torch.Tensor) -> str:
    """Shape, dtype and the exact bytes (so another subset, order or label permutation gives another digest)."""
    data = t.detach().cpu().contiguous()
    return f"{tuple(data.shape)}:{data.dtype}:{_bytes_digest(data.reshape(-1).view(torch.uint8).numpy())}"


def _bytes_digest(data) -> str:
    """SHA-256 of a C-contiguous buffer, read in place: 0.13 s for MNIST's training digits (docs/benchmarks.md)."""
    return hashlib.sha256(data).hexdigest()[:32]


# Code of these packages (and of the standard library) is not followed: it does not change between runs of a
# notebook, so its qualified name stands for it.
_EXTERNAL = {"torch", "numpy", "scipy", "sklearn", "matplotlib", "tqdm", "ipywidgets", "IPython", "PIL"}
_VALUES = (int, float, complex, str, bytes, bool, type(None), range, slice, torch.dtype, torch.device, Path, enum.Enum)
_C_CODE = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    types.ClassMethodDescriptorType,
)


def _external(obj) -> bool:
    """True for code of torch & co., of the standard library and of Python's built-in types (but "builtins" is also
    where exec'd classes land: those are followed)."""
    top = (getattr(obj, "__module__", None) or "").split(".")[0]
    if top == "builtins":
        return getattr(builtins, getattr(obj, "__qualname__", ""), None) is obj
    return top in _EXTERNAL or top in sys.stdlib_module_names


def _describe(obj, out: list[str], seen: dict[int, tuple], where: str, depth: int) -> None:
    """Append to `out` a description of `obj` by value; raise NotDescribable where there is none."""
    if depth > 60:
        raise NotDescribable(f"{where} nests deeper than the cache follows")
    if isinstance(obj, _VALUES) or isinstance(obj, np.generic):
        out.append(f"{type(obj).__qualname__}:{obj!r}")
        return
    if isinstance(obj, torch.Tensor):
        out.append(tensor_digest(obj))
        return
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise NotDescribable(f"{where} is a numpy array of Python objects")
        out.append(f"array{obj.shape}:{obj.dtype}:{_bytes_digest(np.ascontiguousarray(obj))}")
        return
    if id(obj) in seen:  # a shared object or a cycle (a function that calls itself)
        out.append(f"<seen {seen[id(obj)][0]}>")
        return
    seen[id(obj)] = (len(seen), obj)  # holding obj keeps its id from being reused by another object
    step = functools.partial(_describe, out=out, seen=seen, depth=depth + 1)
    if isinstance(obj, (tuple, list, set, frozenset)):
        items = list(obj)
        if isinstance(obj, (set, frozenset)):
            items = sorted(items, key=repr)
        out.append(f"{type(obj).__name__} of {len(items)}")
        for i, item in enumerate(items):
            step(item, where=f"{where}[{i}]")
    elif isinstance(obj, (dict, types.SimpleNamespace)):
        items = vars(obj) if isinstance(obj, types.SimpleNamespace) else obj
        out.append(f"{type(obj).__name__} of {len(items)}")
        for k in sorted(items, key=repr):
            step(k, where=f"a key of {where}")
            step(items[k], where=f"{where}[{k!r}]")
    elif isinstance(obj, types.ModuleType):
        out.append(f"module {obj.__name__}")  # what code reads from it is described where it is read
    elif isinstance(obj, functools.partial):
        out.append("partial")
        for part in ("func", "args", "keywords"):
            step(getattr(obj, part), where=f"{where}.{part}")
    elif isinstance(obj, types.MethodType):
        step(obj.__self__, where=f"{where}.__self__")
        step(obj.__func__, where=where)
    elif isinstance(obj, (types.FunctionType, type)) and _external(obj) or isinstance(obj, _C_CODE):
        out.append(f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', obj)!r}")
    elif isinstance(obj, types.FunctionType):
        _describe_function(obj, out, step)
    elif isinstance(obj, type):
        out.append(f"class {obj.__module__}.{obj.__qualname__}")
        for klass in obj.__mro__:
            if klass is object or _external(klass):
                out.append(f"base {klass.__module__}.{klass.__qualname__}")
                continue
            for name, member in sorted(vars(klass).items()):
                code = isinstance(member, (types.FunctionType, staticmethod, classmethod, property))
                if code or not (name.startswith("__") and name.endswith("__") or name == "_abc_impl"):
                    member = getattr(member, "__func__", getattr(member, "fget", member))  # static/class/property
                    step(member, where=f"{klass.__qualname__}.{name}")
    elif isinstance(obj, nn.Module):  # the model, or a frozen net the loss reads: class, settings, weights
        step(type(obj), where=f"the class of {where}")
        public = {k: v for k, v in vars(obj).items() if not k.startswith("_") and k != "training"}
        step(public, where=where)
        for kind in ("_parameters", "_buffers", "_modules"):
            step({k: v for k, v in getattr(obj, kind).items() if v is not None}, where=f"{where} ({kind[1:]})")
    elif isinstance(obj, torch.Generator):
        out.append(f"generator {tensor_digest(obj.get_state())}")
    elif callable(obj) and _external(type(obj)) and not hasattr(obj, "__dict__"):
        out.append(f"{type(obj).__module__}.{type(obj).__qualname__}:{getattr(obj, '__name__', '')}")  # ufuncs
    elif hasattr(obj, "__dict__") and not any("__slots__" in vars(k) for k in type(obj).__mro__[:-1]):
        step(type(obj), where=f"the class of {where}")  # a plain object: its class and its attributes
        step(dict(vars(obj)), where=where)
    else:
        raise NotDescribable(f"{where} is a {type(obj).__qualname__}, which the cache cannot describe by value")


def _parsed(source: str) -> str:
    """Source code as its syntax tree (ast.dump), or as written where it does not parse alone (a lambda's line)."""
    try:
        return ast.dump(ast.parse(textwrap.dedent(source)))
    except SyntaxError:
        return source


def _describe_function(fn: types.FunctionType, out: list[str], step) -> None:
    """A function by its code and what it reads: globals, closure variables, defaults (keyword-only ones too)."""
    name = fn.__qualname__
    codes, global_names, attributes = [fn.__code__], set(), set()
    while codes:  # the function and the functions and comprehensions nested in it
        code = codes.pop()
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                global_names.add(ins.argval)
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                attributes.add(ins.argval)
    try:  # its code as Python parses it (comments, blank lines and layout do not change what it computes)
        out.append(_parsed(inspect.getsource(fn)))
    except (OSError, TypeError):  # code without a file (exec'd): its bytecode and constants
        out.append(fn.__code__.co_code.hex() + repr([c for c in fn.__code__.co_consts if not inspect.iscode(c)]))
    for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not yet filled
            value = None
        step(value, where=f"`{var}`, which {name} closes over")
    step(fn.__defaults__, where=f"the defaults of {name}")
    step(fn.__kwdefaults__, where=f"the keyword-only defaults of {name}")
    scope = fn.__globals__
    for var in sorted(global_names & set(scope)):
        value = scope[var]
        step(value, where=f"`{var}`, which {name} reads")
        if isinstance(value, types.ModuleType) and not _external(value):
            # a module read as `module.attr`: the attributes of it this code names (its submodules are named only)
            for attr in sorted(attributes & set(dir(value))):
                step(getattr(value, attr), where=f"`{var}.{attr}`, which {name} reads")
