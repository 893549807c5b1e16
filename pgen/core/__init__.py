"""What every part of pgen stands on: the device mesh and shardings, joining a multi-process
run, compiler options, files written whole, chunked evaluation, pixel ranges and image files,
and how a config key is declared."""
