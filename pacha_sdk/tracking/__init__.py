"""The live, in-process side: a :class:`~pacha_sdk.tracking.run.Run` and its hot path.

User code enters here (``pacha.run``, ``@pacha.track``, ``pacha.log_metric``);
points and records leave through :mod:`pacha_sdk.storage`. Nothing on the
read side (:mod:`pacha_sdk.query`) imports this package. The public names
are exported from :mod:`pacha_sdk`, not from here, so no attribute of this
package is ever shadowed by a submodule of the same name.
"""
