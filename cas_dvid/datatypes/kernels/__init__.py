"""Numeric kernels for views of image data: pyramids (downsample), arbitrary slices (arb), tiles."""
