"""The named configurations; any field of one is changed with --set (workflows.overrides).

  nus_vs_uniform     the NUS experiment: 1800 scenes, S = 64, 72, 80, seeds 0, 1, 2
  nus_camvid         the same on CamVid: trains on trainval, scores test at 360x480
  quickstart         the quickstart: 200 scenes, S = 64, one seed (25 minutes on 2 cores)
  quickstart_smoke   the quickstart on tiny images with a few steps per stage (the tests')

`python -m workflows.nus_experiment` takes any of them (of a quickstart: its experiment
part, the same stages), `python -m workflows.quickstart` the quickstart ones.
"""
import dataclasses

from workflows import nus_experiment_lib
from workflows import quickstart_config
from workflows import record_arrays
from workflows import scene_arrays


def nus_vs_uniform() -> nus_experiment_lib.ExperimentConfig:
  return nus_experiment_lib.ExperimentConfig()


def nus_camvid() -> nus_experiment_lib.ExperimentConfig:
  """CamVid's records in data/camvid (docs/training.md converts them; --set
  records.dataset_dir=... for another place)."""
  return nus_experiment_lib.ExperimentConfig(
      output_dir="runs/nus_camvid", dataset="camvid",
      records=record_arrays.RecordSplits("data/camvid"))


def quickstart() -> quickstart_config.QuickstartConfig:
  """Sized for 25 minutes on 2 CPU cores."""
  defaults = nus_experiment_lib.ExperimentConfig()
  experiment = dataclasses.replace(
      defaults, output_dir="runs/quickstart",
      scenes=scene_arrays.SceneSet(num_train=200, num_val=30), sampling_sizes=(64,), seeds=(0,),
      aux_pretraining=dataclasses.replace(defaults.aux_pretraining, training_number_of_steps=300),
      aux_training=dataclasses.replace(defaults.aux_training, training_number_of_steps=1000),
      segmenter_training=dataclasses.replace(defaults.segmenter_training,
                                             training_number_of_steps=800))
  return quickstart_config.QuickstartConfig(experiment)


def quickstart_smoke() -> quickstart_config.QuickstartConfig:
  """Tiny images and a few steps per stage: every stage runs, in minutes."""
  defaults = nus_experiment_lib.ExperimentConfig()
  experiment = dataclasses.replace(
      defaults, output_dir="runs/quickstart_smoke",
      scenes=scene_arrays.SceneSet(128, 256, num_train=16, num_val=4), sampling_sizes=(16,),
      seeds=(0,),
      aux_pretraining=dataclasses.replace(defaults.aux_pretraining, training_number_of_steps=10),
      aux_training=dataclasses.replace(defaults.aux_training, training_number_of_steps=10),
      segmenter_training=dataclasses.replace(defaults.segmenter_training,
                                             training_number_of_steps=10))
  reference_training = dataclasses.replace(quickstart_config.QuickstartConfig.reference_training,
                                           training_number_of_steps=10, train_batch_size=4)
  return quickstart_config.QuickstartConfig(
      experiment, reference_training=reference_training, reference_crop_size=(64, 64),
      num_shards=2, latency_images=1, latency_repeats=1, num_examples=2, tflite_verify_images=1,
      tflite_runs=1)


QUICKSTART = {"quickstart": quickstart, "quickstart_smoke": quickstart_smoke}
EXPERIMENT = {"nus_vs_uniform": nus_vs_uniform, "nus_camvid": nus_camvid,
              **{name: lambda preset=preset: preset().experiment
                 for name, preset in QUICKSTART.items()}}
