"""Check types: small Python functions over ``Facts`` that rules parametrise.

A check type is declared with :func:`check_type`::

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        option: str = Field(description="the sshd option to look at")

    @check_type("sshd_option", params_model=Params, missing=MissingPolicy.ERROR, needs=("sshd",))
    def sshd_option(facts, params, rule):
        '''One paragraph on what fails. Missing fact: what ``missing`` means here.'''
        return [CheckResult(Status.FAIL, "...", resource="...", evidence=Evidence(...))]

The function returns only what it wants to report; an empty list means the rule passed.
``needs`` names the ``Facts`` fields it reads: when one of them is ``None`` (its collector
failed) the engine applies the rule's ``missing`` policy without calling the function. A check
that finds a needed fact missing deeper down raises :class:`MissingFact`; one that finds the
rule does not apply to the image (no sshd for an sshd option) raises :class:`NotApplicable`.

The reference page ``docs/check-types.md`` is generated from these declarations by
``python -m imageaudit.checks --doc``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from imageaudit.findings import CheckResult, MissingPolicy, Rule


class MissingFact(Exception):
    """Raised by a check when a fact it needs is absent; the engine applies ``missing``."""

    def __init__(self, fact: str, reason: str = "") -> None:
        super().__init__(fact, reason)
        self.fact = fact
        self.reason = reason


class NotApplicable(Exception):
    """Raised by a check when the rule does not apply to the image; the message says why."""


CheckFunc = Callable[[Any, Any, "Rule"], Sequence[CheckResult]]


@dataclass(frozen=True, slots=True)
class CheckType:
    """A registered check type: its function, parameter model and missing-fact default."""

    name: str
    func: CheckFunc
    params_model: type[BaseModel]
    missing: MissingPolicy
    needs: tuple[str, ...]

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.func.__doc__ or "")


class Registry:
    """Check types by name. The default one holds the built-in types; tests make their own."""

    def __init__(self) -> None:
        self._types: dict[str, CheckType] = {}

    def register(self, ctype: CheckType) -> None:
        if ctype.name in self._types:
            raise ValueError(f"check type {ctype.name!r} is already registered")
        self._types[ctype.name] = ctype

    def check_type(
        self,
        name: str,
        *,
        params_model: type[BaseModel],
        missing: MissingPolicy,
        needs: Sequence[str] = (),
    ) -> Callable[[CheckFunc], CheckFunc]:
        """Decorator registering a check function under ``name`` in this registry."""

        def decorate(func: CheckFunc) -> CheckFunc:
            if not inspect.cleandoc(func.__doc__ or ""):
                raise ValueError(f"check type {name!r} needs a docstring")
            self.register(CheckType(name, func, params_model, MissingPolicy(missing), tuple(needs)))
            return func

        return decorate

    def copy(self) -> Registry:
        """A new registry holding the same check types (tests add their own to it)."""
        new = Registry()
        new._types = dict(self._types)
        return new

    def get(self, name: str) -> CheckType | None:
        return self._types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[CheckType]:
        return iter(sorted(self._types.values(), key=lambda c: c.name))

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._types))


_DEFAULT = Registry()
_loaded = False


def check_type(
    name: str,
    *,
    params_model: type[BaseModel],
    missing: MissingPolicy,
    needs: Sequence[str] = (),
) -> Callable[[CheckFunc], CheckFunc]:
    """Register a built-in check type in the default registry (see the module docstring)."""
    return _DEFAULT.check_type(name, params_model=params_model, missing=missing, needs=needs)


def builtin_modules() -> list[str]:
    """The modules of this package, where the built-in check types are declared: found, not
    listed, so a new module of check types needs no other edit."""
    return sorted(
        f"{__name__}.{module.name}"
        for module in pkgutil.iter_modules(__path__)
        if not module.name.startswith("_")
    )


def default_registry() -> Registry:
    """The registry of built-in check types, importing their modules on first call."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in builtin_modules():
            importlib.import_module(module)
    return _DEFAULT


__all__ = [
    "CheckFunc",
    "CheckResult",
    "CheckType",
    "MissingFact",
    "MissingPolicy",
    "NotApplicable",
    "Registry",
    "builtin_modules",
    "check_type",
    "default_registry",
]
