"""The read side: metrics as Arrow, run records, artifacts, lineage and store upkeep.

Reading never needs a live run, so nothing here imports
:mod:`pacha_sdk.tracking`.
"""
