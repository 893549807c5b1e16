"""Training a config: the loop, the compiled train step, checkpoints, recovery from
failures, what the loop watches, and the files a run writes in its workdir."""
