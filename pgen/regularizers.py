"""Gradient penalties on the discriminator, as functions of a per-example logit function.

    penalty = r1_penalty(lambda x: d_logits(params, x), real_images)
    penalty = gradient_penalty(lambda x: d_logits(params, x), real, fake, key)

Both differentiate D with respect to its input image by image, so D must be a
per-example function (no batch normalization).
"""

import jax
import jax.numpy as jnp


def _input_gradients(logits_fn, images):
  """d logit_i / d image_i for each i (one backward pass: the sum of per-example logits), in
  float32 at least (the penalties are, whatever the network computes in)."""
  grads = jax.grad(lambda x: jnp.sum(logits_fn(x)))(images)
  return grads.astype(jnp.promote_types(grads.dtype, jnp.float32))


def r1_penalty(logits_fn, real_images):
  """E ||grad_x D(x)||^2 over real images (Mescheder et al. 2018); multiply by gamma / 2."""
  grads = _input_gradients(logits_fn, real_images)
  return jnp.mean(jnp.sum(jnp.square(grads), axis=(1, 2, 3)))


def gradient_penalty(logits_fn, real_images, fake_images, key):
  """E (||grad D(x_hat)||_2 - 1)^2 at random interpolates of real and fake images (WGAN-GP,
  Gulrajani et al. 2017); multiply by lambda (10)."""
  eps = jax.random.uniform(key, (real_images.shape[0], 1, 1, 1))
  interpolates = eps * real_images + (1.0 - eps) * fake_images
  grads = _input_gradients(logits_fn, interpolates)
  norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=(1, 2, 3)) + 1e-12)
  return jnp.mean(jnp.square(norms - 1.0))
