from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ctpipe.training.denoise.config import (
    DenoiseTrainConfig,
    TrainConfigError,
    load_train_config,
)
from tests.conftest import REPO

SHIPPED = sorted((REPO / "workflows" / "training").glob("denoise_*.yaml"))

MINIMAL = """\
model: {name: redcnn, kwargs: {filters: 8}}
data: {root: /data/aapm, train_patients: [L096], validation_holdout: 1}
output_dir: runs/test
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, extra: str = "", base: str = MINIMAL) -> DenoiseTrainConfig:
    return load_train_config(write(tmp_path, base + extra))


def test_shipped_configs_exist():
    names = {p.name for p in SHIPPED}
    assert {"denoise_redcnn.yaml", "denoise_redcnn_cpu.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load(path: Path):
    config = load_train_config(path)
    assert config.model.name == "redcnn"
    height, width = config.patches.size
    assert height == width >= 55  # the paper's 55 x 55, or larger for more context
    assert config.optimizer.name == "adam"
    assert config.train.loss == "mse"
    # the manifest's test patient is never named for training or validation
    assert "L192" not in (config.data.train_patients or ())
    assert "L192" not in config.data.validation_patients


def test_paper_config_is_the_paper():
    config = load_train_config(REPO / "workflows/training/denoise_redcnn.yaml")
    assert config.model.kwargs == {"filters": 96, "kernel_size": 5, "predict_residual": False}
    assert config.optimizer.lr == pytest.approx(1e-4)
    assert config.schedule.min_lr == pytest.approx(1e-5)


def test_cpu_config_validates_on_training_slices_only():
    config = load_train_config(REPO / "workflows/training/denoise_redcnn_cpu.yaml")
    assert config.data.train_patients == ("L096", "L143")
    assert config.data.validation_patients == ()
    assert config.data.validation_holdout >= 1
    assert config.train.device == "cpu"


def test_minimal_config_takes_defaults(tmp_path):
    config = load(tmp_path)
    assert config.train.batch_size == 16
    assert config.patches.per_slice == 8
    assert config.schedule.name == "constant"
    assert config.resume is None


def test_empty_section_takes_defaults(tmp_path):
    assert load(tmp_path, "train:\n").train.epochs == 1


def test_round_trip(tmp_path):
    config = load(tmp_path, "schedule: {name: cosine, min_lr: 1.0e-6}\n")
    assert DenoiseTrainConfig.from_dict(config.to_dict()) == config


def test_unknown_nested_key_names_path_allowed_keys_and_spelling(tmp_path):
    with pytest.raises(TrainConfigError) as info:
        load(tmp_path, "train: {batchsize: 16}\n")
    message = str(info.value)
    assert "train.yaml" in message
    assert "unknown key 'train.batchsize'" in message
    assert "allowed keys at train: batch_size, epochs" in message
    assert "did you mean 'batch_size'?" in message


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(
        TrainConfigError, match=r"unknown key 'optimiser'.*did you mean 'optimizer'"
    ):
        load(tmp_path, "optimiser: {lr: 1.0e-4}\n")


def test_unknown_key_in_deep_section(tmp_path):
    with pytest.raises(
        TrainConfigError, match=r"unknown key 'data.simulated.dose'; allowed keys at data.simulated"
    ):
        load(tmp_path, "", base=MINIMAL.replace("validation_holdout: 1", "simulated: {dose: 1}"))


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        ("train: {batch_size: '16'}\n", r"train\.batch_size must be an integer, got str '16'"),
        ("train: {batch_size: 16.0}\n", r"train\.batch_size must be an integer, got float 16.0"),
        ("train: {epochs: true}\n", r"train\.epochs must be an integer, got bool True"),
        ("optimizer: {lr: fast}\n", r"optimizer\.lr must be a number, got str 'fast'"),
        ("patches: {size: 55}\n", r"patches\.size must be a list, got int 55"),
        ("patches: {size: [55, 55, 55]}\n", r"patches\.size must be a list of 2 items"),
        ("patches: {size: [55, x]}\n", r"patches\.size\[1\] must be an integer"),
        ("patches: {flip: 'yes'}\n", r"patches\.flip must be true or false"),
        ("train: {device: 0}\n", r"train\.device must be a string \(quote it in YAML\)"),
        ("train: {amp: null}\n", r"train\.amp must not be null"),
        ("model: {kwargs: [1]}\n", r"model\.kwargs must be a mapping"),
    ],
)
def test_wrong_type_names_key_and_value(tmp_path, extra, pattern):
    base = MINIMAL.split("\n", 1)[1] if extra.startswith("model") else MINIMAL
    with pytest.raises(TrainConfigError, match=pattern):
        load(tmp_path, extra, base=base)


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    # YAML 1.1 reads 1e-4 as a string; numeric fields accept it
    assert load(tmp_path, "optimizer: {lr: 1e-4}\n").optimizer.lr == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        ("optimizer: {name: sgd}\n", r"optimizer\.name must be one of adam, got str 'sgd'"),
        ("schedule: {name: cosin}\n", r"schedule\.name must be one of .*did you mean 'cosine'"),
        ("train: {loss: mae}\n", r"train\.loss must be one of mse, l1"),
    ],
)
def test_choices(tmp_path, extra, pattern):
    with pytest.raises(TrainConfigError, match=pattern):
        load(tmp_path, extra)


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        ("train: {batch_size: 12}\n", r"batch_size must be a multiple of patches\.per_slice"),
        ("train: {batch_size: 0}\n", r"train: batch_size must be >= 1, got 0"),
        ("patches: {per_slice: 0}\n", r"patches: per_slice must be >= 1, got 0"),
        ("optimizer: {lr: -1}\n", r"optimizer: lr must be > 0, got -1.0"),
        ("schedule: {name: step}\n", r"schedule: step_size must be >= 1 for name 'step'"),
        ("train: {device: gpu}\n", r"train: device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        (
            "schedule: {name: cosine, min_lr: 1.0}\n",
            r"schedule\.min_lr must be <= optimizer\.lr",
        ),
    ],
)
def test_value_rules(tmp_path, extra, pattern):
    with pytest.raises(TrainConfigError, match=pattern):
        load(tmp_path, extra)


def test_unknown_model_suggests(tmp_path):
    with pytest.raises(
        TrainConfigError, match=r"model: name must be one of .*did you mean 'redcnn'"
    ):
        load(tmp_path, "", base=MINIMAL.replace("name: redcnn", "name: redcn"))


def test_patient_in_train_and_validation(tmp_path):
    base = MINIMAL.replace("validation_holdout: 1", "validation_patients: [L096]")
    with pytest.raises(TrainConfigError, match="both train_patients and validation_patients"):
        load(tmp_path, "", base=base)


def test_data_needs_a_source(tmp_path):
    base = MINIMAL.replace(
        "data: {root: /data/aapm, train_patients: [L096], validation_holdout: 1}", "data: {}"
    )
    with pytest.raises(TrainConfigError, match="data: root or simulated must be given"):
        load(tmp_path, "", base=base)


def test_missing_required_key(tmp_path):
    with pytest.raises(TrainConfigError, match="key 'output_dir' is required"):
        load(tmp_path, "", base=MINIMAL.replace("output_dir: runs/test\n", ""))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [("- a\n- b\n", "the top level must be a mapping, got list"), ("a: [\n", "not valid YAML")],
)
def test_malformed_file(tmp_path, text, pattern):
    with pytest.raises(TrainConfigError, match=pattern):
        load_train_config(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(TrainConfigError, match="cannot read training config"):
        load_train_config(tmp_path / "absent.yaml")


def test_replace_revalidates(tmp_path):
    config = load(tmp_path)
    with pytest.raises(ValueError, match="output_dir must not be empty"):
        dataclasses.replace(config, output_dir=" ")
