"""Recipes and hyperparameters, as pacha's ``recipe`` module.

The numeric bounds are pacha's Rust types, so that every record written here
loads there: ``batch_size``, ``epochs`` and ``warmup_steps`` are ``usize``
(:data:`USIZE_MAX`, a 64-bit machine's), version numbers ``u32``
(:data:`U32_MAX`), floats finite (JSON has no NaN). A stored ``null`` in
``custom`` (an older SDK's NaN) is left out on read, as ``None`` is on input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

from pydantic import Field, field_validator, model_validator
from typing_extensions import TypeAliasType

from pacha_sdk.models._base import Model

__all__ = [
    "U32_MAX",
    "USIZE_MAX",
    "HyperparamValue",
    "Hyperparameters",
    "RecipeReference",
    "RecipeVersion",
]

USIZE_MAX = 2**64 - 1
"""Largest ``batch_size``, ``epochs`` or ``warmup_steps``: pacha's ``usize`` on 64 bits."""
U32_MAX = 2**32 - 1
"""Largest major, minor or patch number: pacha's ``u32``."""

_FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
_Usize = Annotated[int, Field(ge=0, le=USIZE_MAX)]
_U32 = Annotated[int, Field(ge=0, le=U32_MAX)]


if TYPE_CHECKING:
    HyperparamValue = Union[bool, int, float, str, list["HyperparamValue"]]  # noqa: UP007
else:  # pydantic needs a named alias to validate the recursion
    HyperparamValue = TypeAliasType(
        "HyperparamValue",
        Union[bool, int, _FiniteFloat, str, list["HyperparamValue"]],  # noqa: UP007
    )
"""A hyperparameter value: float, int, bool, string or a list of those (pacha's untagged enum)."""


class Hyperparameters(Model):
    """Training hyperparameters, as pacha's ``recipe::Hyperparameters``.

    The named fields are pacha's; everything else lives in :attr:`custom`.
    Build one from a plain mapping with :func:`pacha_sdk.run` (it sorts keys
    into named fields and ``custom`` and converts values).
    """

    learning_rate: _FiniteFloat = 1e-3
    """Learning rate."""
    batch_size: _Usize = 32
    """Batch size."""
    epochs: _Usize = 10
    """Number of epochs."""
    weight_decay: _FiniteFloat = 0.0
    """Weight decay (L2 regularisation)."""
    max_grad_norm: _FiniteFloat | None = None
    """Gradient clipping norm; left out of JSON when unset."""
    warmup_steps: _Usize | None = None
    """Warmup steps; left out of JSON when unset."""
    custom: dict[str, HyperparamValue] = Field(default_factory=dict)
    """Every other hyperparameter, by name (nested mappings as dotted keys)."""

    NAMED: ClassVar[frozenset[str]] = frozenset(
        {"learning_rate", "batch_size", "epochs", "weight_decay", "max_grad_norm", "warmup_steps"}
    )

    @field_validator("custom", mode="before")
    @classmethod
    def _leave_out_none(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in data.values():
            return {key: value for key, value in data.items() if value is not None}
        return data

    def as_flat_dict(self) -> dict[str, HyperparamValue]:
        """Return the named fields that are set and every custom value in one dict."""
        named = self.model_dump(exclude={"custom"})
        return {**named, **self.custom}


class RecipeVersion(Model, frozen=True):
    """A recipe's semantic version; JSON ``{major, minor, patch}``, also accepts ``"1.2.0"``."""

    major: _U32
    """Major version."""
    minor: _U32 = 0
    """Minor version."""
    patch: _U32 = 0
    """Patch version."""

    @model_validator(mode="before")
    @classmethod
    def _parse_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            parts = data.strip().removeprefix("v").split(".")
            if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
                raise ValueError(f"version {data!r} is not of the form MAJOR.MINOR.PATCH")
            return dict(zip(("major", "minor", "patch"), map(int, parts)))
        return data

    @classmethod
    def parse(cls, text: str) -> RecipeVersion:
        """Parse ``"MAJOR.MINOR.PATCH"``."""
        return cls.model_validate(text)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


class RecipeReference(Model, frozen=True):
    """A reference to the recipe a run followed: ``RecipeReference("bert-ft", "1.2.0")``."""

    name: str
    """Recipe name."""
    version: RecipeVersion
    """Recipe version."""

    def __init__(self, name: str, version: RecipeVersion | str | dict[str, int]) -> None:
        super().__init__(name=name, version=version)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"
