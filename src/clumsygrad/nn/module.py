"""``Module`` and the containers ``Sequential``, ``ModuleList``, ``ModuleDict``, as PyTorch users know them.

A module registers what is assigned to its attributes: a PARAMETER tensor becomes a parameter,
a ``Module`` a submodule; ``register_buffer`` adds a NumPy array that is state but not trained
(BatchNorm's running statistics).  ``state_dict()`` maps dotted names to copies of the
parameters (PARAMETER tensors) and buffers (arrays); ``load_state_dict`` checks every name,
shape and type before it writes anything, then copies the values in place (the parameter
objects stay the same, so an optimizer built on them keeps working).

Modules pickle and deep-copy through their attributes: tensors carry their values and
gradients, never a graph.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Any, Dict, Iterable, Iterator, Optional, Tuple

import numpy as np

from ..tensor import Tensor, TensorType

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__module__ = "clumsygrad.nn"
IncompatibleKeys.__doc__ = "What ``load_state_dict(strict=False)`` did not match: ``missing_keys``, ``unexpected_keys``."


def _is_parameter(value) -> bool:
    return isinstance(value, Tensor) and value._tensor_type == TensorType.PARAMETER


class Module:
    """Base class of every layer and model: subclasses set attributes in ``__init__`` (after
    ``super().__init__()``) and define ``forward``; ``module(x)`` calls ``forward(x)``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def _registries(self):
        try:
            return self.__dict__["_parameters"], self.__dict__["_buffers"], self.__dict__["_modules"]
        except KeyError:
            raise AttributeError(
                f"cannot assign to {type(self).__name__} before Module.__init__() is called "
                f"(call super().__init__() first)"
            ) from None

    def __setattr__(self, name: str, value) -> None:
        params, buffers, modules = self._registries()
        if _is_parameter(value):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to parameter {name!r} of "
                    f"{type(self).__name__} (a PARAMETER Tensor or None is required)"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule {name!r} (a Module or None is required)")
            modules[name] = None
        elif name in buffers:
            buffers[name] = None if value is None else np.asarray(value)
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        for registry in self._registries():
            registry.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            registry = d.get(key)
            if registry is not None and name in registry:
                return registry[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in self._registries():
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Optional[Tensor]) -> None:
        """Add ``param`` (a PARAMETER tensor, or None for an absent one such as a disabled bias)."""
        if param is not None and not _is_parameter(param):
            raise TypeError(f"register_parameter({name!r}) needs a PARAMETER Tensor or None, got {param!r}")
        self._forget(name)
        self._registries()[0][name] = param

    def register_buffer(self, name: str, value) -> None:
        """Add a state array that is saved in ``state_dict`` but not trained."""
        self._forget(name)
        self._registries()[1][name] = None if value is None else np.asarray(value)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}) needs a Module, got {type(module).__name__}")
        self._forget(name)
        self._registries()[2][name] = module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """``(dotted name, module)`` for this module and every submodule, each once, depth first."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Tensor]]:
        """``(dotted name, parameter)`` of every parameter, each tensor once (shared ones too)."""
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{mod_name}.{name}" if mod_name else name), param

    def parameters(self) -> Iterator[Tensor]:
        """Every parameter tensor, each once: what an optimizer takes."""
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[Tuple[str, np.ndarray]]:
        for mod_name, module in self.named_modules():
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), buf

    def buffers(self) -> Iterator[np.ndarray]:
        for _, buf in self.named_buffers():
            yield buf

    # ------------------------------------------------------------------ modes and gradients
    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active, batch statistics) for this module and its submodules."""
        if not isinstance(mode, bool):
            raise TypeError(f"train() takes a bool, got {type(mode).__name__}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to None."""
        for param in self.parameters():
            param.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Freeze (False) or unfreeze every parameter; frozen ones receive no gradient."""
        for param in self.parameters():
            param._requires_grad = bool(requires_grad)
        return self

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        """``{dotted name: copy}``: parameters as PARAMETER tensors, buffers as arrays, in
        registration order.  ``clumsygrad.save(model.state_dict(), path)`` writes it."""
        state: Dict[str, Any] = OrderedDict()
        for mod_name, module in self.named_modules():
            full = (lambda n: f"{mod_name}.{n}" if mod_name else n)
            for name, param in module._parameters.items():
                if param is not None:
                    state[full(name)] = Tensor(param._data, TensorType.PARAMETER, dtype=param._data.dtype)
            for name, buf in module._buffers.items():
                if buf is not None:
                    state[full(name)] = np.array(buf)
        return state

    def _state_slots(self) -> Dict[str, tuple]:
        slots = OrderedDict()
        for mod_name, module in self.named_modules():
            for kind, registry in (("parameter", module._parameters), ("buffer", module._buffers)):
                for name, value in registry.items():
                    if value is not None:
                        slots[f"{mod_name}.{name}" if mod_name else name] = (kind, module, name, value)
        return slots

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy ``state_dict``'s values into this module's parameters and buffers, in place.

        Every key and shape is checked first; with ``strict`` a missing or unexpected key is a
        ``KeyError`` listing them, a shape mismatch (always) a ``ValueError`` naming the key
        and both shapes, and nothing has changed.  Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict expects a dict of arrays or tensors, got {type(state_dict).__name__}")
        slots = self._state_slots()
        missing = [k for k in slots if k not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in slots]
        if strict and (missing or unexpected):
            raise KeyError(
                f"error loading a state dict into {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        updates = []
        for key, (kind, module, name, current) in slots.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value._data if isinstance(value, Tensor) else value
            try:
                array = np.asarray(array)
            except Exception:
                array = None
            if array is None or array.dtype.kind not in "biuf":
                raise TypeError(f"state dict entry {key!r} is not a real numeric array or tensor: {type(value).__name__}")
            target = current._data if kind == "parameter" else current
            if array.shape != target.shape:
                raise ValueError(
                    f"size mismatch for {key!r}: the state dict has shape {array.shape}, "
                    f"this {type(module).__name__} has shape {target.shape}"
                )
            updates.append((kind, module, name, current, array))
        from ..optimizer import _updated_in_place, _writable

        for kind, module, name, current, array in updates:
            if kind == "parameter":
                with _writable(current._data):
                    current._data[...] = array
                _updated_in_place(current)
            else:
                module._buffers[name] = np.array(array, dtype=current.dtype)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ calling and printing
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.forward(*args, **kwargs)  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        """The arguments shown between the parentheses of this module's ``repr`` line."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def __setstate__(self, state):
        self.__dict__.update(state)


class Sequential(Module):
    """Modules applied one after the other; ``Sequential(a, b)`` or ``Sequential(OrderedDict(...))``."""

    def __init__(self, *modules) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, module in modules[0].items():
                self.add_module(str(name), module)
        else:
            for i, module in enumerate(modules):
                if not isinstance(module, Module):
                    raise TypeError(f"Sequential takes Modules, argument {i} is {type(module).__name__}")
                self.add_module(str(i), module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered; indexable and iterable."""

    def __init__(self, modules: Optional[Iterable[Module]] = None) -> None:
        super().__init__()
        for module in modules or ():
            self.append(module)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        values = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(values[index])
        return values[index]


class ModuleDict(Module):
    """A dict of modules (string keys) whose parameters are registered."""

    def __init__(self, modules=None) -> None:
        super().__init__()
        for name, module in dict(modules or {}).items():
            self[name] = module

    def __setitem__(self, name: str, module: Module) -> None:
        if not isinstance(name, str):
            raise TypeError(f"ModuleDict keys are strings, got {type(name).__name__}")
        self.add_module(name, module)

    def __getitem__(self, name: str) -> Module:
        return self._modules[name]

    def __delitem__(self, name: str) -> None:
        del self._modules[name]

    def __contains__(self, name) -> bool:
        return name in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
