"""Data: rows served in batches from arrays, memory-mapped files and :class:`RowView`
(:mod:`.batches`), Dask arrays block by block (:mod:`.dask_arrays`), DataFrame columns
(:mod:`.columns`), and the data sets (:mod:`.datasets`; the bundled digits live beside it).
"""
