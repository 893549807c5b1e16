"""pgen.experiments.sweeps: the helpers sweep files use, every point checked before anything runs, values
that reach `train` exactly through its command line, and the manifest of a sweep workdir.
(Sweeps that train are in tests/integration/test_sweep.py.)"""

import json
import os

import pytest
import yaml
from conftest import ROOT

from pgen.errors import ArgumentError, ConfigError
from pgen.experiments import sweep_jobs, sweep_launch, sweeps

CONFIG = os.path.join(ROOT, "configs", "fashion_mnist_dcgan.py") + ":smoke"


def test_product_zipped_and_with_seeds_order_their_points():
  assert sweeps.product(a=(1, 2), b=(3, 4)) == [
      {"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3}, {"a": 2, "b": 4}]
  assert sweeps.zipped(a=(1, 2), b=(3, 4)) == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]
  assert sweeps.with_seeds(sweeps.zipped(a=(1, 2)), seeds=(0, 1)) == [
      {"a": 1, "seed": 0}, {"a": 1, "seed": 1}, {"a": 2, "seed": 0}, {"a": 2, "seed": 1}]
  assert sweeps.product(sweeps.zipped(a=(1, 2), b=(3, 4)), c=(5,)) == [
      {"a": 1, "b": 3, "c": 5}, {"a": 2, "b": 4, "c": 5}]
  with pytest.raises(ValueError, match="one length"):
    sweeps.zipped(a=(1, 2), b=(3,))
  with pytest.raises(ValueError, match="needs a list of values"):
    sweeps.product(a=0.1)


def _sweep_file(tmp_path, body: str) -> str:
  path = tmp_path / "sweep.py"
  path.write_text("from pgen.experiments.sweeps import product, with_seeds, zipped\n\n"
                  f"def get_sweep():\n  return {body}\n")
  return str(path)


@pytest.mark.parametrize("body, expected", [
    ("[]", "must return a non-empty list"),
    ("[{'seed': 0}, 3]", "point 1 is 3; each point must be a dict"),
    ("[{'seed': object()}]", "point 0 .*values must be numbers"),
    ("product(seed=0)", "get_sweep.. failed: ValueError: The axis seed needs a list"),
])
def test_a_sweep_file_that_is_not_a_list_of_overrides_is_refused(tmp_path, body, expected):
  with pytest.raises(ArgumentError, match=expected) as error:
    sweeps.load_points(_sweep_file(tmp_path, body))
  assert error.value.command_line_message().startswith("--sweep=")


def test_points_load_as_json_holds_them(tmp_path):
  path = _sweep_file(tmp_path, "with_seeds(product(**{'optim.g_betas': [(0.0, 0.9)]}), (0, 1))")
  assert sweeps.load_points(path) == [{"optim.g_betas": [0.0, 0.9], "seed": 0},
                                      {"optim.g_betas": [0.0, 0.9], "seed": 1}]


@pytest.mark.parametrize("point, expected", [
    ({"loss.r1_weigt": 0.5},
     'point 2 {"loss.r1_weigt": 0.5}: loss.r1_weigt is not a pgen config key; did you mean '
     "loss.r1_weight?"),
    ({"loss.r1_every": 0}, 'point 2 {"loss.r1_every": 0}: loss.r1_every=0 must be >= 1.'),
    ({"batch_size": 16.5}, "point 2 .*batch_size=16.5 must be an integer"),
    ({"model.minibatch_std": 5}, "point 2 .*model.minibatch_std=5 must divide batch_size=16"),
    ({"data.data_dir": None}, "point 2 .*data.data_dir=None cannot be passed on train's command"),
    ({"seed": 0}, 'point 2 {"seed": 0} repeats point 0'),
])
def test_a_bad_point_is_an_error_that_names_it(point, expected):
  with pytest.raises(ConfigError, match=expected.replace("{", r"\{").replace("?", r"\?")):
    sweeps.plan(CONFIG, [{"seed": 0}, {"seed": 1}, point])


def test_the_config_and_its_base_overrides_are_checked_before_the_points():
  with pytest.raises(ConfigError, match="Unknown config variant 'smok'"):
    sweeps.plan(CONFIG[:-1], [{"seed": 0}])
  with pytest.raises(ConfigError, match="before any point's overrides: total_steps=0 must be"):
    sweeps.plan(CONFIG, [{"seed": 0}], {"total_steps": 0})


def test_train_reads_back_exactly_the_config_each_point_was_checked_with():
  """Floats that print long, tuples, the keys of several types (data.resolution, the
  augment policy as a tuple or as text) and strings that look like code reach `train`."""
  points = [
      {"optim.g_learning_rate": 0.1 + 0.2, "optim.d_learning_rate": 1 / 3, "seed": 7},
      {"optim.g_betas": [0.0, 0.9], "data.resolution": [32, 32], "augment.hflip": True},
      {"augment.policy": ["translation", "cutout"], "data.split": "train[:50%]"},
      {"augment.policy": "translation,color", "loss.r1_weight": 1, "model.latent_dim": 8},
  ]
  sweep = sweeps.plan(CONFIG, points, {"data.download": False})
  for point in sweep.points:
    as_trained = sweeps.config_lib.load(CONFIG, sweep.train_flags(point))
    assert sweeps.config_lib.resolve(as_trained).to_dict() == point.config.to_dict()
  assert sweep.points[0].config.optim.g_learning_rate == 0.1 + 0.2
  assert sweep.points[1].config.optim.g_betas == (0.0, 0.9)
  assert sweep.points[3].config.augment.policy == "translation,color"
  flags = sweep.train_flags(sweep.points[0])
  assert "--config.optim.d_learning_rate=0.3333333333333333" in flags
  assert sweep.swept_keys == ("optim.g_learning_rate", "optim.d_learning_rate", "seed",
                              "optim.g_betas", "data.resolution", "augment.hflip",
                              "augment.policy", "data.split", "loss.r1_weight",
                              "model.latent_dim")


def test_a_value_that_the_command_line_would_change_is_refused(monkeypatch):
  """The check behind the one above: were a value rendered lossily, the point is refused."""
  monkeypatch.setattr(sweeps, "command_line_value", lambda key, value: f"{value:.3g}")
  with pytest.raises(ConfigError, match="point 0 .*optim.g_learning_rate=0.3333333333333333 "
                                        "reads back from train's command line as 0.333"):
    sweeps.plan(CONFIG, [{"optim.g_learning_rate": 1 / 3}])


def test_swept_keys_are_those_with_more_than_one_value():
  points = [{"seed": 0, "loss.r1_weight": 0.5}, {"seed": 1, "loss.r1_weight": 0.5}]
  assert sweeps.plan(CONFIG, points).swept_keys == ("seed",)


def test_the_manifest_resumes_the_same_sweep_and_refuses_another(tmp_path):
  workdir = str(tmp_path / "sweep")
  points = sweeps.product(seed=(0, 1))
  sweep = sweeps.plan(CONFIG, points, {"data.download": False}, "s.py")
  sweeps.write_manifest(workdir, sweep)
  sweeps.write_manifest(workdir, sweep)  # The same sweep again: a resume.
  manifest = json.load(open(os.path.join(workdir, "sweep.json")))
  assert manifest == {
      "config": CONFIG, "sweep": "s.py", "base_overrides": {"data.download": False},
      "swept_keys": ["seed"],
      "points": [{"index": 0, "name": "0000", "overrides": {"seed": 0}},
                 {"index": 1, "name": "0001", "overrides": {"seed": 1}}]}
  assert json.load(open(os.path.join(workdir, "0001", "overrides.json"))) == {"seed": 1}
  other = sweeps.plan(CONFIG, sweeps.product(seed=(0, 2)), {"data.download": False}, "s.py")
  with pytest.raises(ArgumentError, match=r'point 1 is {"seed": 1} there, {"seed": 2} now.*'
                                          "give a new sweep a new --workdir"):
    sweeps.write_manifest(workdir, other)


def test_cores_are_split_into_contiguous_even_shares():
  assert sweep_launch.core_shares([0, 1], 2) == [[0], [1]]
  assert sweep_launch.core_shares(list(range(16)), 3) == [
      list(range(6)), list(range(6, 11)), list(range(11, 16))]
  assert sweep_launch.core_shares([0, 1], 3) == [[0], [1], [0]]


def test_the_job_files_run_one_point_per_task(tmp_path):
  workdir = str(tmp_path / "sweep")
  sweep = sweeps.plan(CONFIG, sweeps.product(seed=(0, 1, 2)), {"data.split": "train[:10%]"},
                      "sweeps/s.py")
  lines = open(sweep_jobs.write_slurm(workdir, sweep, parallel=2)).read().splitlines()
  assert "#SBATCH --array=0-2%2" in lines
  assert lines[-1].endswith(f"--workdir={workdir} --point \"$SLURM_ARRAY_TASK_ID\"")
  assert "'--config.data.split=train[:10%]'" in lines[-1]  # Quoted for the shell.
  job = yaml.safe_load(open(sweep_jobs.write_kubernetes(workdir, sweep)))
  assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
  assert job["metadata"]["name"] == "pgen-sweep-sweep"
  assert job["spec"]["completionMode"] == "Indexed"
  assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
  [container] = job["spec"]["template"]["spec"]["containers"]
  assert container["image"] == "${IMAGE}"
  shell, flag, command = container["command"]
  assert (shell, flag) == ("sh", "-c")
  assert command.startswith("exec python -m pgen sweep --config=")
  assert command.endswith('--point "$JOB_COMPLETION_INDEX"')


def test_submitting_says_how_without_sbatch_and_reports_sbatch_s_refusal(tmp_path,
                                                                        monkeypatch):
  sweep = sweeps.plan(CONFIG, [{"seed": 0}], {}, "s.py")
  path = sweep_jobs.write_slurm(str(tmp_path / "sweep"), sweep)
  monkeypatch.setenv("PATH", str(tmp_path))
  assert sweep_jobs.submit_slurm(path) == (
      f"sbatch is not on PATH here; on the cluster, submit with: sbatch {path}")
  sbatch = tmp_path / "sbatch"
  sbatch.write_text("#!/bin/sh\necho 'sbatch: error: invalid partition' >&2\nexit 1\n")
  sbatch.chmod(0o755)
  with pytest.raises(sweep_jobs.SubmitError, match="failed .exit 1.: sbatch: error: invalid"):
    sweep_jobs.submit_slurm(path)
