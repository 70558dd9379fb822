"""The read side: metrics as Arrow, run records, artifacts, lineage and store upkeep.

Also curation after the fact (:mod:`~pacha_sdk.query.curation`: edits,
archiving, deletion to the trash and restore), which writes only files of
its own beside a run's record and never the record itself.

Reading never needs a live run, so nothing here imports
:mod:`pacha_sdk.tracking`.
"""
