"""The C buffer and hot path (pacha_sdk/storage/_pointbuf.c); everything else is in pyproject.toml.

The extension is optional: where it cannot be built (no compiler, no Python
headers) the install still succeeds and pacha-sdk runs its pure-Python path
(README, "How logging stays cheap"). ``ext_modules`` stays here rather than in
pyproject.toml, where setuptools still calls it experimental.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pacha_sdk.storage._pointbuf",
            sources=["pacha_sdk/storage/_pointbuf.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        )
    ]
)
