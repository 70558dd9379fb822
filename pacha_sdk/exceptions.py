"""Every error pacha-sdk raises on purpose.

The tree, rooted at :class:`PachaError`. Where Python users expect a builtin
exception, the class inherits it too, so ``except ValueError`` keeps working::

    PachaError
    ├── InvalidMetricError (ValueError)        bad metric name, value or step
    │   └── MetricTypeError (TypeError)        value or step of the wrong type
    ├── InvalidHyperparameterError (ValueError)
    ├── InvalidRunIdError (ValueError)         not a UUID
    ├── UnsafeNameError (ValueError)           a name that would escape the root
    ├── InvalidRecordError (ValueError)        a stored run.json that cannot be read
    ├── NoActiveRunError (RuntimeError)        module-level logging outside a run
    ├── RunStateError (RuntimeError)           e.g. logging to a finished run
    ├── RunNotFoundError (LookupError)
    ├── AmbiguousRunIdError (LookupError)      a short id prefix matching several runs*
    ├── MetricNotFoundError (LookupError)      a chart of a metric no run has*
    ├── ExtraNotInstalledError (ImportError)   a feature's optional extra is missing*
    ├── ArtifactNotFoundError (LookupError)    no blob with this hash in the store
    ├── ArtifactCorruptedError (ValueError)    a blob whose content does not match its hash
    ├── UnknownSchemeError (ValueError)        no backend for a URI scheme
    ├── BackendNotInstalledError (ImportError) an optional extra is missing
    └── StoreError (OSError)                   the store refused or failed an operation
        ├── StorePermissionError (PermissionError)  credentials refused or access denied
        └── BucketNotFoundError                the bucket does not exist

A :class:`StoreError` is permanent: retrying will not help until someone
fixes the store or the settings. Transient failures (connection refused,
HTTP 5xx, throttling) stay plain :class:`OSError` inside the SDK, where
the writer retries them.

(* defined beside the code that raises them: ``pacha_sdk.query.maintenance`` and
``pacha_sdk.views.charts``; all are exported from ``pacha_sdk``.)

Each message is built from the offending value, so the user sees what was
wrong without a debugger.
"""

from __future__ import annotations

__all__ = [
    "ArtifactCorruptedError",
    "ArtifactNotFoundError",
    "BackendNotInstalledError",
    "BucketNotFoundError",
    "InvalidHyperparameterError",
    "InvalidMetricError",
    "InvalidRecordError",
    "InvalidRunIdError",
    "MetricTypeError",
    "NoActiveRunError",
    "PachaError",
    "RunNotFoundError",
    "RunStateError",
    "StoreError",
    "StorePermissionError",
    "UnknownSchemeError",
    "UnsafeNameError",
]


def _show(value: object, limit: int = 80) -> str:
    """Return a short ``repr`` of *value* for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PachaError(Exception):
    """Base of every error the SDK raises on purpose."""


class InvalidMetricError(PachaError, ValueError):
    """A metric name, value or step that cannot be stored."""

    def __init__(self, name: object, problem: str) -> None:
        self.metric_name = name
        super().__init__(f"metric {_show(name)}: {problem}")


class MetricTypeError(InvalidMetricError, TypeError):
    """A metric value or step of a type that is not a number."""


class InvalidHyperparameterError(PachaError, ValueError):
    """A hyperparameter that is not a JSON value pacha can store."""

    def __init__(self, key: str, value: object, problem: str) -> None:
        self.key = key
        self.value = value
        super().__init__(f"hyperparameter {key!r} = {_show(value)}: {problem}")


class InvalidRunIdError(PachaError, ValueError):
    """A run id that is not a UUID."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(f"run id {_show(value)} is not a UUID")


class UnsafeNameError(PachaError, ValueError):
    """A name that would escape the store's root or is otherwise unusable."""

    def __init__(self, what: str, value: object, problem: str) -> None:
        self.value = value
        super().__init__(f"{what} {_show(value)}: {problem}")


class InvalidRecordError(PachaError, ValueError):
    """A stored ``run.json`` that is not a valid ``ExperimentRun``."""

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        super().__init__(f"{location} is not a valid run record: {problem}")


class NoActiveRunError(PachaError, RuntimeError):
    """Module-level logging was called while no run is active."""

    def __init__(self, function: str) -> None:
        super().__init__(
            f"pacha.{function}() needs an active run: call it inside "
            "`with pacha.run(...)` or a function decorated with @pacha.track"
        )


class RunStateError(PachaError, RuntimeError):
    """An operation that the run's current status does not allow."""


class RunNotFoundError(PachaError, LookupError):
    """No run with this id is stored under the root."""

    def __init__(self, run_id: str, root: str) -> None:
        self.run_id = run_id
        self.root = root
        super().__init__(f"no run {run_id} under {root}")


class ArtifactNotFoundError(PachaError, LookupError):
    """No artifact with this content hash is stored under the root."""

    def __init__(self, content_hash: str, root: str) -> None:
        self.content_hash = content_hash
        self.root = root
        super().__init__(f"no artifact {content_hash} under {root}")


class ArtifactCorruptedError(PachaError, ValueError):
    """A stored artifact whose content no longer matches its BLAKE3 hash."""

    def __init__(self, location: str, expected: str, actual: str) -> None:
        self.location = location
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"artifact {location} is corrupted: its content hashes to {actual}, not {expected}"
        )


class StoreError(PachaError, OSError):
    """The store refused or failed an operation."""


class UnknownSchemeError(PachaError, ValueError):
    """No backend is registered for a URI scheme."""

    def __init__(self, scheme: str, known: list[str]) -> None:
        self.scheme = scheme
        super().__init__(
            f"no pacha backend for URI scheme {scheme!r}; known schemes: {', '.join(known)}"
        )


class BackendNotInstalledError(PachaError, ImportError):
    """The backend for a scheme needs an optional extra that is not installed."""

    def __init__(self, scheme: str, hint: str) -> None:
        self.scheme = scheme
        super().__init__(f"the {scheme}:// backend is not installed: {hint}")


class StorePermissionError(StoreError, PermissionError):
    """The store refused the credentials or denied access."""


class BucketNotFoundError(StoreError):
    """The bucket (or container) of a store URI does not exist."""

    def __init__(self, bucket: str, message: str) -> None:
        self.bucket = bucket
        super().__init__(message)
