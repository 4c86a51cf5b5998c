"""labelmap: DVID's uint64 segmentation datatype (kernels and wire formats so far)."""
