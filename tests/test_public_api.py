"""The public API: ``__all__`` is sorted, complete, and covers DESIGN.md section 1."""

from __future__ import annotations

import inspect

import pacha_sdk as pacha

DESIGN_NAMES = {
    "run",
    "track",
    "active_run",
    "log_metric",
    "log_metrics",
    "read_metrics",
    "load_run",
    "list_runs",
    "best_run",
    "metrics_dataset",
    "Run",
    "ExperimentRun",
    "RunId",
    "RunStatus",
    "HardwareInfo",
    "MetricRecord",
    "ArtifactReference",
    "Hyperparameters",
    "HyperparamValue",
    "RecipeReference",
    "RecipeVersion",
    "PachaError",
    "RunNotFoundError",
}


def test_all_is_sorted_and_unique() -> None:
    assert pacha.__all__ == sorted(set(pacha.__all__))


def test_every_exported_name_exists() -> None:
    for name in pacha.__all__:
        assert hasattr(pacha, name), name


def test_design_names_are_exported() -> None:
    assert set(pacha.__all__) >= DESIGN_NAMES


def test_every_error_derives_from_pacha_error() -> None:
    errors = [
        getattr(pacha, name)
        for name in pacha.__all__
        if inspect.isclass(getattr(pacha, name)) and issubclass(getattr(pacha, name), Exception)
    ]
    assert len(errors) >= 10
    assert all(issubclass(error, pacha.PachaError) for error in errors)


def test_errors_also_derive_from_the_builtin_users_expect() -> None:
    assert issubclass(pacha.RunNotFoundError, LookupError)
    assert issubclass(pacha.InvalidMetricError, ValueError)
    assert issubclass(pacha.MetricTypeError, TypeError)
    assert issubclass(pacha.InvalidHyperparameterError, ValueError)
    assert issubclass(pacha.BackendNotInstalledError, ImportError)
    assert issubclass(pacha.StoreError, OSError)


def test_options_after_the_first_argument_are_keyword_only() -> None:
    for function in (pacha.run, pacha.read_metrics, pacha.load_run, pacha.list_runs):
        parameters = list(inspect.signature(function).parameters.values())
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:]), function


def test_package_is_typed() -> None:
    from importlib.resources import files

    assert files("pacha_sdk").joinpath("py.typed").is_file()


def test_import_is_light_and_loads_names_on_first_use() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import pacha_sdk as pacha\n"
        "heavy = {'pydantic', 'pyarrow', 'psutil', 's3fs', 'gcsfs', 'rich'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "import pacha_sdk.tracking.run, pacha_sdk.tracking.track\n"
        "import pacha_sdk.storage.sync, pacha_sdk.query.lineage\n"
        "assert callable(pacha.run) and pacha.run.__module__ == 'pacha_sdk.tracking.api'\n"
        "assert pacha.track.__module__ == 'pacha_sdk.tracking.track'\n"
        "assert pacha.sync.__module__ == 'pacha_sdk.storage.sync'\n"
        "assert pacha.lineage.__module__ == 'pacha_sdk.query.lineage'\n"
        "assert pacha.Run.__module__ == 'pacha_sdk.tracking.run'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
