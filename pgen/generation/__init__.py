"""Images from a trained generator: loading a run or an export, grids and .npz files,
catalogs, interpolation, style mixing, post-processing and export."""
