"""The layout contract, and points and records turned into stored objects.

Keys (:mod:`~pacha_sdk.storage.layout`), the Parquet schema, run and rank
records (:mod:`~pacha_sdk.storage.records`, also where a store's failure
becomes ``StoreError``), the records as readers see them, edits folded in
(:mod:`~pacha_sdk.storage.annotated`), the trash (:mod:`~pacha_sdk.storage.trash`),
the inputs records list, content-addressed blobs, the hot-path buffer,
part encoding, the background writer, the local spool and its upload.
Both sides use it: the writer to store, :mod:`pacha_sdk.query` to read. It
never imports ``tracking``, ``query``, ``views``, ``cli`` or ``ui``.
"""
