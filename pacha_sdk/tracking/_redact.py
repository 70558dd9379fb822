"""Keep credentials from the command line and ``storage_options`` out of a run's record.

A run records its command line (``extra.environment.argv``) and, through
``pacha.run(vars(args))``, often the parsed arguments as hyperparameters,
in a file meant to be shared. :class:`Secrets` finds the credentials there
and stores each as ``***``:

* the value of a flag whose name looks secret, ``--hf-token=VALUE`` or the
  two-entry ``--hf-token VALUE`` (the name is split into words at ``-``,
  ``_`` and ``.``; a word containing key, secret, token, password, passwd or
  credential makes it secret, except words that only resemble them:
  tokenizer, tokens, keyword, keyframe and their kin);
* every string given in ``storage_options`` (the SDK cannot tell an access
  key from an endpoint, so all of them), wherever it appears in an entry;
* the ``user:password@`` part of a URL.

The values found this way are then replaced wherever the run would store
them: hyperparameter strings (with a warning naming the key) and the error
message and traceback of a failed run. A value shorter than
:data:`MIN_SCRUB_CHARS` characters is only replaced where it is the whole
string, so ``--key-dim=64`` does not turn ``resnet64`` into ``resnet***``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pacha_sdk.models import Hyperparameters, HyperparamValue
    from pacha_sdk.tracking._options import RunOptions

__all__ = [
    "MIN_SCRUB_CHARS",
    "REDACTED",
    "Secrets",
    "looks_like_secret_flag",
    "redacted_hyperparameters",
]

REDACTED = "***"
"""What a secret is stored as."""

MIN_SCRUB_CHARS = 6
"""Shortest secret replaced inside a longer string; shorter ones only as a whole string."""

_SECRET_WORD = re.compile(r"key|secret|token|passw(?:or)?d|credential", re.IGNORECASE)
_LOOKALIKES = frozenset(
    {
        "tokenizer",
        "tokenizers",
        "tokenize",
        "tokenized",
        "tokens",
        "keyword",
        "keywords",
        "keyframe",
        "keyframes",
        "monkey",
    }
)
_FLAG = re.compile(r"^--?([A-Za-z][\w.-]*)$")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)(?P<userinfo>[^/\s@]+)@")


def looks_like_secret_flag(entry: str) -> bool:
    """Whether the command-line flag *entry* (``--api-key``, without ``=value``) names a secret."""
    match = _FLAG.match(entry)
    if match is None:
        return False
    words = re.split(r"[-_.]", match.group(1).lower())
    return any(_SECRET_WORD.search(word) and word not in _LOOKALIKES for word in words)


def _strings(value: object) -> Iterator[str]:
    """Every string in *value*, a storage_options value (nested mappings and lists too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


class Secrets:
    """The credentials a run was given on its command line and in ``storage_options``.

    Args:
        argv: the command line (``sys.argv``).
        storage_options: the run's store settings; every string in them counts.
    """

    def __init__(self, argv: Sequence[str], storage_options: Mapping[str, Any] | None) -> None:
        self._argv = [str(entry) for entry in argv]
        found = {text for text in _strings(storage_options or {}) if text}
        self._redacted_argv = self._redact_argv(found)
        self._values = sorted(found, key=len, reverse=True)  # longest first: no partial leftovers

    @property
    def values(self) -> frozenset[str]:
        """The secret strings found."""
        return frozenset(self._values)

    def _redact_argv(self, found: set[str]) -> list[str]:
        """The command line with secret flag values as ``***``; adds the values to *found*."""
        redacted: list[str] = []
        value_follows = False
        for entry in self._argv:
            if value_follows and not entry.startswith("-"):
                found.add(entry)
                redacted.append(REDACTED)
                value_follows = False
                continue
            flag, equals, value = entry.partition("=")
            secret_flag = looks_like_secret_flag(flag)
            if secret_flag and equals:
                if value:
                    found.add(value)
                entry = f"{flag}={REDACTED}"
            value_follows = secret_flag and not equals
            redacted.append(entry)
        for match in _URL_CREDENTIALS.finditer(" ".join(self._argv)):
            user, colon, password = match.group("userinfo").partition(":")
            found.add(password if colon else user)  # a bare userinfo is a token
        found.discard("")
        return redacted

    def argv(self) -> list[str]:
        """The command line as it may be recorded."""
        return [self.scrub(entry) for entry in self._redacted_argv]

    def scrub(self, text: str) -> str:
        """*text* with every known secret (and URL credentials) replaced by ``***``."""
        if not self._values and "@" not in text:
            return text
        text = _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", text)
        for secret in self._values:
            if text == secret:
                return REDACTED
            if len(secret) >= MIN_SCRUB_CHARS and secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def _scrub_value(self, value: HyperparamValue) -> HyperparamValue:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self._scrub_value(item) for item in value]
        return value

    def hyperparameters(
        self, hyperparameters: Hyperparameters, *, stacklevel: int = 4
    ) -> Hyperparameters:
        """*hyperparameters* with secrets in custom strings as ``***``, one warning per key.

        *stacklevel* points the warning at the caller's line (the default:
        past ``Run.__init__`` and ``pacha.run``).
        """
        if not self._values:
            return hyperparameters
        custom: dict[str, HyperparamValue] = {}
        for key, value in hyperparameters.custom.items():
            scrubbed = self._scrub_value(value)
            if scrubbed != value:
                warnings.warn(
                    f"pacha: hyperparameter {key!r} holds a secret given on the command line "
                    f"or in storage_options; it is recorded as {REDACTED!r}",
                    UserWarning,
                    stacklevel=stacklevel,
                )
            custom[key] = scrubbed
        return hyperparameters.model_copy(update={"custom": custom})


def redacted_hyperparameters(
    hparams: Hyperparameters | Mapping[str, Any] | None, options: RunOptions
) -> tuple[Secrets, Hyperparameters]:
    """A new run's secrets (``sys.argv`` and its ``storage_options``) and its hyperparameters.

    The hyperparameters are built from *hparams* by the strict rules, then
    redacted; a warning names each key that held a secret.
    """
    import sys

    from pacha_sdk.tracking._hparams import build_hyperparameters

    secrets = Secrets(sys.argv, options["storage_options"])
    return secrets, secrets.hyperparameters(build_hyperparameters(hparams), stacklevel=5)
