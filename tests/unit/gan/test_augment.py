"""Differentiable augmentation and ADA: identity at p=0, gradients, what each transform does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen.gan import augment

pytestmark = pytest.mark.usefixtures("fast_compile")

ALL = ("translation", "cutout", "color")


def _images(n=64, size=16, channels=3, seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), (n, size, size, channels), minval=-1.0,
                            maxval=1.0)


@pytest.mark.parametrize("policy", [("translation",), ("cutout",), ("color",), ALL])
def test_probability_zero_is_exactly_the_identity(policy):
  images = _images()
  out = augment.augment(images, jax.random.PRNGKey(1), policy=policy, probability=0.0)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(images))


@pytest.mark.parametrize("name", ALL)
def test_every_transform_passes_gradients_to_its_input(name):
  images = _images(8)
  weights = jax.random.normal(jax.random.PRNGKey(2), images.shape)

  def loss(x):
    return jnp.sum(augment.augment(x, jax.random.PRNGKey(3), policy=(name,), probability=1.0)
                   * weights)

  grads = jax.grad(loss)(images)
  assert np.all(np.isfinite(grads))
  # Every image reaches the output, so every image gets a gradient.
  assert np.all(np.abs(np.asarray(grads)).sum(axis=(1, 2, 3)) > 0)


def test_translation_moves_content_without_changing_it():
  images = _images(16, size=16)
  out = np.asarray(augment.translate(images, jax.random.PRNGKey(4)))
  images = np.asarray(images)
  shifts = []
  for original, moved in zip(images, out):
    found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
             if np.array_equal(moved[max(dy, 0):16 + min(dy, 0), max(dx, 0):16 + min(dx, 0)],
                               original[max(-dy, 0):16 - max(dy, 0),
                                        max(-dx, 0):16 - max(dx, 0)])]
    assert found, "output is not a shifted copy of the input"
    shifts.append(found[0])
  assert len(set(shifts)) > 1  # Each image gets its own shift.


def test_cutout_zeroes_one_square_of_half_the_size():
  images = jnp.ones((32, 16, 16, 1))
  out = np.asarray(augment.cutout(images, jax.random.PRNGKey(5)))
  zeros = (out[..., 0] == 0)
  for mask in zeros:
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    # A square of side 8, clipped where it crosses the border.
    assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8
    assert mask.sum() == len(rows) * len(cols)


def test_real_and_fake_batches_see_the_same_distribution_of_transforms():
  """The step calls the same function with independent keys: the share of images each
  transform changes is p for any batch content."""
  p = 0.3
  for name in ALL:
    changed = []
    for seed, images in enumerate([_images(4000, 8, seed=10), _images(4000, 8, seed=11) * 0.5]):
      out = augment.augment(images, jax.random.PRNGKey(seed), policy=(name,), probability=p)
      changed.append(np.mean(np.any(np.asarray(out) != np.asarray(images), axis=(1, 2, 3))))
    # Translation by (0, 0) and cutout outside... both still count as "hit" only when visible.
    assert abs(changed[0] - changed[1]) < 0.04, (name, changed)
    assert 0.2 < changed[0] <= p + 0.03, (name, changed)


def test_hflip_mirrors_about_half_of_the_images():
  images = _images(400, 8)
  out = np.asarray(augment.random_hflip(images, jax.random.PRNGKey(6)))
  images = np.asarray(images)
  mirrored = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)])
  kept = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
  assert np.all(mirrored ^ kept)
  assert 0.4 < mirrored.mean() < 0.6


def test_ada_raises_p_when_d_is_confident_on_reals_and_lowers_it_otherwise():
  state = augment.AugmentState.create(0.5)
  confident = jnp.ones((64,))  # sign(D(real)) = 1 > target 0.6: overfitting, more augmentation.
  unsure = -jnp.ones((64,))
  kwargs = dict(target=0.6, interval=4, images_per_adjustment=64 * 40)
  up = state
  for step in range(4):
    up = augment.ada_update(up, confident, step=step, **kwargs)
    # Adjusts only at the end of each interval.
    assert float(up.probability) == pytest.approx(0.6 if step == 3 else 0.5)
  assert int(up.real_sign_count) == 0
  down = state
  for step in range(4):
    down = augment.ada_update(down, unsure, step=step, **kwargs)
  assert float(down.probability) == pytest.approx(0.4)
  top = augment.AugmentState.create(0.99)
  for step in range(4):
    top = augment.ada_update(top, confident, step=step, **kwargs)
  assert float(top.probability) == 1.0  # Clipped to [0, 1].

