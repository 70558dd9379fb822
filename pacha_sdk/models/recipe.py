"""Recipes and hyperparameters, as pacha's ``recipe`` module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

from pydantic import Field, NonNegativeInt, model_validator
from typing_extensions import TypeAliasType

from pacha_sdk.models._base import Model

__all__ = ["HyperparamValue", "Hyperparameters", "RecipeReference", "RecipeVersion"]


if TYPE_CHECKING:
    HyperparamValue = Union[bool, int, float, str, list["HyperparamValue"]]  # noqa: UP007
else:  # pydantic needs a named alias to validate the recursion
    HyperparamValue = TypeAliasType(
        "HyperparamValue",
        Union[bool, int, float, str, list["HyperparamValue"]],  # noqa: UP007
    )
"""A hyperparameter value: float, int, bool, string or a list of those (pacha's untagged enum)."""

_FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Hyperparameters(Model):
    """Training hyperparameters, as pacha's ``recipe::Hyperparameters``.

    The named fields are pacha's; everything else lives in :attr:`custom`.
    Build one from a plain mapping with :func:`pacha_sdk.run` (it sorts keys
    into named fields and ``custom`` and converts values).
    """

    learning_rate: _FiniteFloat = 1e-3
    """Learning rate."""
    batch_size: NonNegativeInt = 32
    """Batch size."""
    epochs: NonNegativeInt = 10
    """Number of epochs."""
    weight_decay: _FiniteFloat = 0.0
    """Weight decay (L2 regularisation)."""
    max_grad_norm: _FiniteFloat | None = None
    """Gradient clipping norm; left out of JSON when unset."""
    warmup_steps: NonNegativeInt | None = None
    """Warmup steps; left out of JSON when unset."""
    custom: dict[str, HyperparamValue] = Field(default_factory=dict)
    """Every other hyperparameter, by name (nested mappings as dotted keys)."""

    NAMED: ClassVar[frozenset[str]] = frozenset(
        {"learning_rate", "batch_size", "epochs", "weight_decay", "max_grad_norm", "warmup_steps"}
    )

    def as_flat_dict(self) -> dict[str, HyperparamValue]:
        """Return the named fields that are set and every custom value in one dict."""
        named = self.model_dump(exclude={"custom"})
        return {**named, **self.custom}


class RecipeVersion(Model, frozen=True):
    """A recipe's semantic version; JSON ``{major, minor, patch}``, also accepts ``"1.2.0"``."""

    major: NonNegativeInt
    """Major version."""
    minor: NonNegativeInt = 0
    """Minor version."""
    patch: NonNegativeInt = 0
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
