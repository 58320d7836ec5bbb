"""Steps come from one registry: a new step is one file plus its registration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from ctpipe.io.nifti import read_nifti
from ctpipe.io.reader import read_study
from ctpipe.steps import STEPS, DenoiseStep, Step, get_step, register_step, unregister_step
from ctpipe.workflow import Workflow, WorkflowError, load_workflow, run_study
from tests.workflow.toy_step import OffsetStep


@pytest.fixture
def offset_step():
    register_step(OffsetStep)
    yield OffsetStep
    unregister_step("offset")


def test_builtin_steps_follow_the_protocol():
    assert list(STEPS) == ["guard", "denoise", "segment", "anomaly", "inpaint"]
    for name, cls in STEPS.items():
        assert cls.name == name and isinstance(cls(), Step)


def test_a_toy_step_in_one_file_runs_in_a_workflow(offset_step, phantom_series, tmp_path):
    (tmp_path / "offset.json").write_text(json.dumps({"offset_hu": 7.0}))
    path = tmp_path / "toy.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "toy",
                "steps": ["offset"],
                "offset": {"weights": "offset.json", "threshold_hu": -200},
                "export": {"dicom": False, "previews": False, "report": False},
            }
        )
    )
    workflow = load_workflow(path)
    assert workflow.offset == OffsetStep(weights="offset.json", threshold_hu=-200.0)
    result = run_study(
        workflow, phantom_series.dicom_folder, tmp_path / "out", workflow_source=path
    )
    assert result.status == "done", result.error
    hu = read_study(phantom_series.dicom_folder).hu
    expected = np.where(hu > -200, hu + 7.0, hu)
    written, _ = read_nifti(tmp_path / "out" / "nifti" / "image.nii.gz")
    final, _ = read_nifti(tmp_path / "out" / "nifti" / "offset.nii.gz")
    np.testing.assert_array_equal(written, hu)
    np.testing.assert_allclose(final, expected)
    record = result.record["steps"]["offset"]
    assert record["metrics"]["voxels_changed"] == int((hu > -200).sum()) > 0
    assert record["model"]["path"] == str((tmp_path / "offset.json").resolve())
    assert result.record["workflow"]["offset"] == {"weights": "offset.json", "threshold_hu": -200.0}


def test_a_step_without_shipped_weights_needs_a_file(offset_step):
    workflow = Workflow.from_dict({"name": "toy", "steps": ["offset"]})
    with pytest.raises(WorkflowError, match=r"offset\.weights: ctpipe ships no default weights"):
        from ctpipe.workflow.config import weights_file

        weights_file(workflow, "offset", source="toy.yaml")


def test_unregistered_steps_are_refused_by_name():
    with pytest.raises(WorkflowError, match=r"steps\[0\] must be one of guard, denoise, segment, "):
        Workflow.from_dict({"name": "toy", "steps": ["offset"]})
    with pytest.raises(WorkflowError, match="unknown key 'offset'"):
        Workflow.from_dict({"name": "toy", "offset": {}})
    with pytest.raises(KeyError, match="did you mean 'denoise'"):
        get_step("denoyse")


def test_a_name_is_registered_once(offset_step):
    other = type("OtherOffset", (OffsetStep,), {})
    with pytest.raises(ValueError, match="already registered as OffsetStep"):
        register_step(other)
    assert register_step(OffsetStep) is OffsetStep  # the same class again is fine


def test_settings_of_the_registered_steps_are_in_every_workflow(offset_step):
    workflow = Workflow(name="x", denoise=DenoiseStep(batch_size=2))
    assert workflow.denoise.batch_size == 2
    assert workflow.offset == OffsetStep()
    sections = ["select", "guard", "denoise", "segment", "anomaly", "inpaint", "offset", "export"]
    assert list(workflow.to_dict())[4:] == sections


def test_denoise_step_self_ensemble_must_be_a_bool():
    assert DenoiseStep(self_ensemble=True).self_ensemble is True
    with pytest.raises(ValueError, match="self_ensemble must be true or false, got 'yes'"):
        DenoiseStep(self_ensemble="yes")
