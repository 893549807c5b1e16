"""The GAN itself, as the train step computes it: the state pytree, losses, gradient
penalties, augmentation (DiffAugment and ADA), schedules, the objectives, and sampling from a
live state."""
