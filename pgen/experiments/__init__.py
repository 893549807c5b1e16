"""Many runs at once: sweeps as data, launching them locally or as cluster array jobs,
comparing runs, and reproducing a run from its record."""
