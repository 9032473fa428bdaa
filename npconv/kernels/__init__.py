"""Reference kernels: readable Numba loop nests, one op a file, each counting the work it does.

Every kernel takes arrays that are already validated, C-contiguous and of one dtype, writes
its result into an output array the caller allocated, and returns the counts of what its
loops executed. Nothing here imports torch or knows about the public API.
"""
