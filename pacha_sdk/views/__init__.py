"""What people look at: text formatting, PNG charts and the static HTML report.

Views read through :mod:`pacha_sdk.query` and the models only.
"""
