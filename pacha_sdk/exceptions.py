"""Every error pacha-sdk raises on purpose.

The tree, rooted at :class:`PachaError`. Where Python users expect a builtin
exception, the class inherits it too, so ``except ValueError`` keeps working::

    PachaError
    ├── InvalidMetricError (ValueError)          bad metric name, value or step
    │   └── MetricTypeError (TypeError)          value or step of the wrong type
    ├── InvalidHyperparameterError (ValueError)
    ├── InvalidRunIdError (ValueError)           not a UUID
    ├── UnsafeNameError (ValueError)             a name that would escape the root
    ├── InvalidRecordError (ValueError)          a stored run.json that cannot be read
    │   └── InvalidPartError                     a metric part file that cannot be read
    ├── InvalidAnnotationError (ValueError)      a tag or note that cannot be stored (too long)
    ├── ArtifactCorruptedError (ValueError)      a blob whose content does not match its hash
    ├── UnknownSchemeError (ValueError)          no backend for a URI scheme
    ├── ImportSourceError (ValueError)           an import source that is missing or not one
    ├── InvalidUriError (ValueError)             a store URI naming no bucket, or with a password
    ├── NoActiveRunError (RuntimeError)          module-level logging outside a run
    ├── RunStateError (RuntimeError)             e.g. logging to a finished run
    │   └── RunInUseError                        another process writes this run's record
    ├── RunNotFoundError (LookupError)
    │   └── RunDeletedError                      the run is in the trash (restore it first)
    ├── AmbiguousRunIdError (LookupError)        a short id prefix matching several runs
    ├── MetricNotFoundError (LookupError)        a chart of a metric no run has
    ├── ArtifactNotFoundError (LookupError)      no blob with this hash in the store
    ├── ExtraNotInstalledError (ImportError)     an optional extra is missing
    └── StoreError (OSError)                     the store refused or failed an operation
        ├── StorePermissionError (PermissionError)  credentials refused or access denied
        ├── BucketNotFoundError                  the bucket does not exist
        └── StoreNotFoundError                   a local store folder that does not exist

``BackendNotInstalledError`` is another name of :class:`ExtraNotInstalledError`
(the same class, kept so code that catches it keeps working): a backend's
missing client and a chart's missing matplotlib are one kind of error.

A :class:`StoreError` is permanent: retrying will not help until someone
fixes the store or the settings. Transient failures (connection refused,
HTTP 5xx, throttling) stay plain :class:`OSError` inside the SDK, where
the writer retries them.

Arguments of the wrong type or out of range (``flush_rows=0``,
``mode="median"``) get a plain :class:`TypeError` or :class:`ValueError`
naming the argument, as Python functions do; the classes above are for what
the SDK refuses about the data, the store or the run's state.

Each message is built from the offending value, so the user sees what was
wrong without a debugger. This module imports nothing, so every other module
of the package can import it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~2 ms)
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "AmbiguousRunIdError",
    "ArtifactCorruptedError",
    "ArtifactNotFoundError",
    "BackendNotInstalledError",
    "BucketNotFoundError",
    "ExtraNotInstalledError",
    "ImportSourceError",
    "InvalidAnnotationError",
    "InvalidHyperparameterError",
    "InvalidMetricError",
    "InvalidPartError",
    "InvalidRecordError",
    "InvalidRunIdError",
    "InvalidUriError",
    "MetricNotFoundError",
    "MetricTypeError",
    "NoActiveRunError",
    "PachaError",
    "RunDeletedError",
    "RunInUseError",
    "RunNotFoundError",
    "RunStateError",
    "StoreError",
    "StoreNotFoundError",
    "StorePermissionError",
    "UnknownSchemeError",
    "UnsafeNameError",
]


def _show(value: object, limit: int = 80) -> str:
    """Return a short ``repr`` of *value* for an error message (its type if it has none)."""
    try:
        text = repr(value)
    except Exception:  # a deep structure (RecursionError) or a broken __repr__
        return f"<{type(value).__name__}>"
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

    argument: str | None = None
    """The argument of the call that held the name, when known (``annotate``'s ``"name"``)."""

    def __init__(self, what: str, value: object, problem: str) -> None:
        self.value = value
        super().__init__(f"{what} {_show(value)}: {problem}")


class InvalidRecordError(PachaError, ValueError):
    """A stored record (``run.json``, a rank record, an annotation) that cannot be read."""

    def __init__(self, location: str, problem: str, *, kind: str = "run record") -> None:
        self.location = location
        super().__init__(f"{location} is not a valid {kind}: {problem}")


class InvalidAnnotationError(PachaError, ValueError):
    """An edit of a run (a tag, a note, a name) that cannot be stored: empty, too long, binary."""

    argument: str | None = None
    """The argument of ``annotate`` that held the value (``"add_tags"``, ``"note"``...)."""

    def __init__(self, what: str, value: object, problem: str) -> None:
        self.value = value
        super().__init__(f"{what} {_show(value)}: {problem}")


class InvalidPartError(InvalidRecordError):
    """A metric part file that cannot be read: cut short, empty, not Parquet, another schema."""

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        self.problem = problem
        PachaError.__init__(  # its own message, not the run record's
            self,
            f"{location} is not a readable metric part file: {problem} (move it out of the "
            "store to read the rest of the run; read_metrics(..., bad_parts='skip') skips it)",
        )


class NoActiveRunError(PachaError, RuntimeError):
    """Module-level logging was called while no run is active."""

    def __init__(self, function: str) -> None:
        super().__init__(
            f"pacha.{function}() needs an active run: call it inside "
            "`with pacha.run(...)` or a function decorated with @pacha.track"
        )


class RunStateError(PachaError, RuntimeError):
    """An operation that the run's current status does not allow."""


class RunInUseError(RunStateError):
    """Another live process writes this run's ``run.json``: a second writer would clobber it.

    Raised when a run is started with the id of a run that another process
    is writing (``run_id=`` or ``$PACHA_RUN_ID`` without ranks), before
    anything is written.
    """

    def __init__(self, run_id: str, holder: str, remedy: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} is being written by {holder}; {remedy}")


class RunNotFoundError(PachaError, LookupError):
    """No run with this id is stored under the root."""

    def __init__(self, run_id: str, root: str) -> None:
        self.run_id = run_id
        self.root = root
        super().__init__(f"no run {run_id} under {root}")


class RunDeletedError(RunNotFoundError):
    """The run was deleted: it is in the trash, where :func:`pacha_sdk.restore_run` finds it."""

    def __init__(self, run_id: str, root: str) -> None:
        self.run_id = run_id
        self.root = root
        Exception.__init__(
            self,
            f"run {run_id} under {root} is in the trash: restore it first "
            f"(pacha.restore_run, or pacha runs restore {run_id[:8]})",
        )


class AmbiguousRunIdError(PachaError, LookupError):
    """A run id prefix that more than one stored run starts with."""

    def __init__(self, prefix: str, matches: list[str], root: str) -> None:
        self.prefix = prefix
        self.matches = matches
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        super().__init__(
            f"run id prefix {prefix!r} matches {len(matches)} runs under {root} ({shown}); "
            "give more characters"
        )


class MetricNotFoundError(PachaError, LookupError):
    """None of the runs asked for has a point of this metric."""

    def __init__(self, name: str, runs: Sequence[str], available: Sequence[str]) -> None:
        """Say which metric is missing, in which runs, and which metrics they have.

        Args:
            name: the metric asked for.
            runs: the runs as the user sees them (short ids).
            available: the metrics those runs do have.
        """
        self.metric_name = name
        known = ", ".join(available) if available else "none"
        super().__init__(
            f"no points of metric {name!r} in run(s) {', '.join(runs)}; their metrics: {known}"
        )


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


class ImportSourceError(PachaError, ValueError):
    """A source to import runs from that does not exist or is not what it should be.

    Raised before anything is written: a folder or database that is not
    there, a folder that is not an MLflow store, a log folder without
    TensorBoard event files, an MLflow experiment the source does not have.
    """

    def __init__(self, source: object, problem: str) -> None:
        self.source = source
        super().__init__(f"{source}: {problem}")


class InvalidUriError(PachaError, ValueError):
    """A store URI that names no store (``s3://``) or carries credentials (``user:pw@``).

    The message never repeats a URI that may hold a secret.
    """


class ExtraNotInstalledError(PachaError, ImportError):
    """A feature needs an optional extra of pacha-sdk (or a package) that is not installed.

    One class for every "install this first" case: the ``s3``/``gcs``
    backends' clients, matplotlib for PNG charts (``plot``), a third-party
    backend whose module cannot be imported (no extra, the import error
    says what is missing). ``BackendNotInstalledError`` is the same class.

    Attributes:
        extra: the pacha-sdk extra that installs what is missing (``"s3"``,
            ``"plot"``), or None when no extra does.
        scheme: the URI scheme, when the feature is a storage backend.
    """

    def __init__(
        self,
        feature: str,
        *,
        extra: str | None,
        package: str | None = None,
        reason: str = "",
        scheme: str | None = None,
    ) -> None:
        """Name what cannot work and how to fix it.

        Args:
            feature: what cannot work: ``"the s3:// backend"`` (not installed
                itself) or, with *package*, ``"PNG charts"`` (need it).
            extra: the extra to install; the message then says
                ``pip install 'pacha-sdk[<extra>]'``.
            package: the missing package, when it is not the feature itself.
            reason: what failed instead, shown when *extra* is None.
            scheme: the URI scheme of a backend.
        """
        self.extra = extra
        self.scheme = scheme
        missing = f"{feature} need {package}, which" if package else feature
        remedy = f"pip install 'pacha-sdk[{extra}]'" if extra is not None else reason
        super().__init__(f"{missing} is not installed: {remedy}")


BackendNotInstalledError = ExtraNotInstalledError
"""The name this error had for missing backends; the same class."""


class StorePermissionError(StoreError, PermissionError):
    """The store refused the credentials or denied access."""


class BucketNotFoundError(StoreError):
    """The bucket (or container) of a store URI does not exist."""

    def __init__(self, bucket: str, message: str) -> None:
        self.bucket = bucket
        super().__init__(message)


class StoreNotFoundError(StoreError):
    """A store that a read names does not exist (a local folder that is not there).

    Writing creates a local store; reading one that is missing is an error,
    never an empty answer, so a mistyped path does not read as "no runs".
    """

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        super().__init__(f"no pacha store at {location}: {problem}")
