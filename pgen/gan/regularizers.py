"""Gradient penalties: on the discriminator, as functions of a per-example logit function,
and StyleGAN2's path-length penalty on the generator's synthesis network.

    penalty = r1_penalty(lambda x: d_logits(params, x), real_images)
    penalty = r2_penalty(lambda x: d_logits(params, x), fake_images)
    penalty = gradient_penalty(lambda x: d_logits(params, x), real, fake, key)
    penalty, mean = path_length_penalty(lambda ws: synthesize(params, ws), ws, key, mean, 0.01)

The first three differentiate D with respect to its input image by image, so D must be a
per-example function (no batch normalization).
"""

import jax
import jax.numpy as jnp
import numpy as np


def _input_gradients(logits_fn, images):
  """d logit_i / d image_i for each i (one backward pass: the sum of per-example logits), in
  float32 at least (the penalties are, whatever the network computes in)."""
  grads = jax.grad(lambda x: jnp.sum(logits_fn(x)))(images)
  return grads.astype(jnp.promote_types(grads.dtype, jnp.float32))


def _mean_squared_gradient_norm(logits_fn, images):
  grads = _input_gradients(logits_fn, images)
  return jnp.mean(jnp.sum(jnp.square(grads), axis=(1, 2, 3)))


def r1_penalty(logits_fn, real_images):
  """E ||grad_x D(x)||^2 over real images (Mescheder et al. 2018); multiply by gamma / 2."""
  return _mean_squared_gradient_norm(logits_fn, real_images)


def r2_penalty(logits_fn, fake_images):
  """E ||grad_x D(x)||^2 over generated images, held fixed (Roth et al. 2017; with R1, what
  makes the relativistic pairing loss converge locally, Huang et al. 2024); multiply by
  gamma / 2."""
  return _mean_squared_gradient_norm(logits_fn, fake_images)


def gradient_penalty(logits_fn, real_images, fake_images, key):
  """E (||grad D(x_hat)||_2 - 1)^2 at random interpolates of real and fake images (WGAN-GP,
  Gulrajani et al. 2017); multiply by lambda (10)."""
  eps = jax.random.uniform(key, (real_images.shape[0], 1, 1, 1))
  interpolates = eps * real_images + (1.0 - eps) * fake_images
  grads = _input_gradients(logits_fn, interpolates)
  norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=(1, 2, 3)) + 1e-12)
  return jnp.mean(jnp.square(norms - 1.0))


def path_length_penalty(synthesize, ws, key, running_mean, decay: float):
  """StyleGAN2's path-length penalty (Karras et al. 2020, eq. 4): E (||J_w^T y||_2 - a)^2,
  J_w the Jacobian of the images with respect to the styles ws (B, num_ws, w_dim), y a
  random image-space direction (N(0, 1) / sqrt(H * W), so the length does not grow with
  the resolution), and a the running mean of the lengths, moved by `decay` towards this
  batch's mean first. Returns (penalty, the updated mean); the mean is not differentiated.
  Multiply the penalty by the weight (2 in the paper)."""
  images, pullback = jax.vjp(synthesize, ws)
  height, width = images.shape[1:3]
  direction = jax.random.normal(key, images.shape, images.dtype) / np.sqrt(height * width)
  (grads,) = pullback(direction)
  grads = grads.astype(jnp.promote_types(grads.dtype, jnp.float32))
  lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))
  mean = jax.lax.stop_gradient(running_mean + decay * (jnp.mean(lengths) - running_mean))
  return jnp.mean(jnp.square(lengths - mean)), mean
