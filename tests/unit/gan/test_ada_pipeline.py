"""ADA's augmentation pipeline: identity at p = 0, differentiable at p = 1, each transform
drawn with p and its parameters' spread, geometry that keeps a square's area as its matrix
says, colour on one and three channels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgen.gan import ada_pipeline, augment

pytestmark = pytest.mark.usefixtures("fast_compile")

GROUP_SETS = ("b", "g", "c", "bg", "bgc")


def _images(channels=3, batch=8, size=32):
  return jax.random.uniform(jax.random.PRNGKey(0), (batch, size, size, channels),
                            minval=-1.0, maxval=1.0)


@pytest.mark.parametrize("groups", GROUP_SETS)
@pytest.mark.parametrize("channels", [1, 3])
def test_probability_zero_is_the_identity_bit_for_bit(groups, channels):
  images = _images(channels)
  out = ada_pipeline.augment_pipeline(images, jax.random.PRNGKey(1), groups, 0.0)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(images))


@pytest.mark.parametrize("groups", GROUP_SETS)
def test_probability_one_changes_images_and_is_differentiable(groups):
  images = _images()
  weights = jax.random.normal(jax.random.PRNGKey(2), images.shape)

  def objective(x):
    return jnp.sum(ada_pipeline.augment_pipeline(x, jax.random.PRNGKey(3), groups, 1.0)
                   * weights)

  out = ada_pipeline.augment_pipeline(images, jax.random.PRNGKey(3), groups, 1.0)
  assert not np.allclose(np.asarray(out), np.asarray(images))
  grad = jax.grad(objective)(images)
  assert np.all(np.isfinite(np.asarray(grad)))
  assert float(jnp.abs(grad).sum()) > 0  # The generator gets a gradient through it.


def _square(size=64, side=8):
  image = np.zeros((size, size, 1), np.float32)
  start = (size - side) // 2
  image[start:start + side, start:start + side] = 1.0
  return image


def test_blit_transforms_move_a_centred_square_without_changing_its_area():
  """Flips, quarter turns and integer shifts of at most 1/8 of the frame only move pixels."""
  square = jnp.asarray(np.stack([_square()] * 32))
  out = ada_pipeline.augment_pipeline(square, jax.random.PRNGKey(4), "b", 1.0)
  areas = np.asarray(jnp.sum(out, axis=(1, 2, 3)))
  np.testing.assert_array_equal(areas, 64.0)
  assert set(np.unique(np.asarray(out))) == {0.0, 1.0}  # Whole pixels, no interpolation.


def test_geometric_transforms_scale_a_centred_square_s_area_by_its_matrix_s_determinant():
  """Each image's area equals the square's over |det| of its inverse transform (rotation,
  anisotropic scaling and shifts keep it; isotropic scaling s gives 1/s^2), within the
  blur of bilinear sampling, for squares that stay inside the frame and frames that sample
  no mirrored copy of the square (reflection padding shows one where a zoom-out reaches
  past the border)."""
  batch, size = 64, 64
  key = jax.random.PRNGKey(5)
  square = jnp.asarray(np.stack([_square(size, 12)] * batch))
  out = ada_pipeline.augment_pipeline(square, key, "g", 1.0)
  geometric_key, _ = jax.random.split(key)
  matrices = np.asarray(ada_pipeline.geometric_matrix(geometric_key, batch, size, size, "g", 1.0))
  inverse = np.linalg.inv(matrices)  # Input point -> output pixel.
  corners = np.asarray([[x, y, 1.0] for x in (-6, 6) for y in (-6, 6)]).T
  placed = inverse @ corners  # (B, 3, 4): where the square's corners land.
  inside = np.all(np.abs(placed[:, :2]) < size / 2 - 2, axis=(1, 2))
  frame = np.asarray([[x, y, 1.0] for x in (-size / 2, size / 2) for y in (-size / 2, size / 2)]).T
  sampled = matrices @ frame  # Where the output frame's corners sample the input.
  nearest_copy = size - 1 - 6  # The square mirrored about a border starts here.
  inside &= np.all(np.abs(sampled[:, :2]) < nearest_copy - 2, axis=(1, 2))
  assert inside.sum() >= batch // 4
  areas = np.asarray(jnp.sum(out, axis=(1, 2, 3)))[inside]
  expected = 144.0 / np.abs(np.linalg.det(matrices[inside, :2, :2]))
  np.testing.assert_allclose(areas, expected, rtol=0.08)
  scale = np.sqrt(np.abs(np.linalg.det(matrices[:, :2, :2])))
  assert np.all((scale > 2 ** (-0.2 * 5)) & (scale < 2 ** (0.2 * 5)))  # Within 5 sigma.


def test_each_transform_is_drawn_with_the_probability_and_the_paper_s_spread():
  """Over 8192 images: blit matrices are signed permutations (half of them mirrored) with
  whole-pixel shifts of at most 1/8 of the frame; "g" at p = 0.5 scales half the images
  (rotation and anisotropic scaling keep the area) with log2 of the isotropic factor of
  spread 0.2; colour at p = 0.5 leaves an image alone only when none of its five transforms
  was drawn or its luma flip came up "no": 0.5^4 x 0.75."""
  batch, key = 8192, jax.random.PRNGKey(7)
  blit = np.asarray(ada_pipeline.geometric_matrix(key, batch, 32, 32, "b", 1.0))
  linear = np.round(blit[:, :2, :2], 5)
  assert set(np.unique(linear)) == {-1.0, 0.0, 1.0}
  mirrored = np.mean(np.linalg.det(linear) < 0)
  assert 0.47 < mirrored < 0.53, mirrored
  shifts = np.round(blit[:, :2, 2], 4)
  np.testing.assert_array_equal(shifts, np.round(shifts))
  assert set(np.unique(shifts)) == set(range(-4, 5))

  general = np.asarray(ada_pipeline.geometric_matrix(key, batch, 32, 32, "g", 0.5))
  log2_scale = 0.5 * np.log2(np.abs(np.linalg.det(general[:, :2, :2])))
  scaled = np.abs(log2_scale) > 1e-5
  assert 0.47 < scaled.mean() < 0.53, scaled.mean()
  assert 0.19 < log2_scale[scaled].std() < 0.21, log2_scale[scaled].std()

  colour = np.asarray(ada_pipeline.color_matrix(key, batch, 0.5))
  untouched = np.mean(np.all(np.abs(colour - np.eye(4)) < 1e-6, axis=(1, 2)))
  assert abs(untouched - 0.5**4 * 0.75) < 0.01, untouched


def test_colour_on_one_channel_acts_on_the_grey_value_as_on_equal_rgb():
  grey = _images(1)
  rgb = jnp.repeat(grey, 3, axis=-1)
  key = jax.random.PRNGKey(6)
  matrices = ada_pipeline.color_matrix(key, grey.shape[0], 1.0)
  one = ada_pipeline.apply_color(grey, matrices)
  three = ada_pipeline.apply_color(rgb, matrices)
  np.testing.assert_allclose(np.asarray(one[..., 0]), np.asarray(three.mean(-1)), atol=1e-5)


def test_colour_transforms_of_grey_keep_it_grey_and_brightness_shifts_it():
  """Hue and saturation turn about the luma axis, so a grey image stays grey; brightness
  alone adds one offset per image."""
  rgb = jnp.repeat(_images(1), 3, axis=-1)
  out = ada_pipeline.apply_color(rgb, ada_pipeline.color_matrix(jax.random.PRNGKey(7), 8, 1.0))
  np.testing.assert_allclose(np.asarray(out[..., 0]), np.asarray(out[..., 1]), atol=1e-5)
  np.testing.assert_allclose(np.asarray(out[..., 0]), np.asarray(out[..., 2]), atol=1e-5)
  shift = ada_pipeline.translate_3d(jnp.asarray([0.3]))
  np.testing.assert_allclose(np.asarray(ada_pipeline.apply_color(rgb[:1], shift)),
                             np.asarray(rgb[:1] + 0.3), atol=1e-6)


def test_policy_names_parse_and_bad_ones_are_refused():
  assert augment.parse_policy("bgc") == "bgc"
  assert augment.parse_policy("translation,cutout") == ("translation", "cutout")
  assert augment.parse_policy(("color",)) == ("color",)
  assert augment.check_policy("bgc") is None and augment.check_policy(()) is None
  assert "unknown transforms ['cgb']" in augment.check_policy("cgb")
  images = _images()
  np.testing.assert_array_equal(
      np.asarray(augment.augment(images, jax.random.PRNGKey(8), policy="bgc", probability=0.0)),
      np.asarray(images))
