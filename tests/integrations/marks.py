"""The marks every framework test module carries.

The frameworks warn a lot on their own (deprecations inside torch and
Lightning, "the dataloader does not have many workers"...); the suite
turns warnings into errors, so these are ignored here, except pacha's
own warnings, which stay errors unless a test expects them.
"""

from __future__ import annotations

import pytest

FRAMEWORK_MARKS = [
    pytest.mark.frameworks,
    pytest.mark.filterwarnings(
        "ignore::DeprecationWarning",
        "ignore::PendingDeprecationWarning",
        "ignore::FutureWarning",
        "ignore::UserWarning",
        "error:pacha:UserWarning",
    ),
]
