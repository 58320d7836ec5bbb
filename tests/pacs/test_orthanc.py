"""Against a real Orthanc: it pushes a real CT series through the node and gets the results.

Orthanc (started by the ``orthanc`` fixture with a temporary configuration) holds a real CT
series and sends it to the node with its own C-STORE SCU (``/modalities/ctpipe/store``);
the node runs the test processor (a derived series and a DICOM-SEG) and sends the results
back by C-STORE or STOW-RS. The checks read Orthanc's REST API. Pull mode queries and
retrieves the series from Orthanc by C-FIND/C-GET, C-FIND/C-MOVE and QIDO-RS/WADO-RS.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from ctpipe.cli import main
from ctpipe.errors import InputError
from tests.conftest import REPO, shared_path
from tests.pacs.conftest import Orthanc, node_config, running_node, wait_finished

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent"),
]
DEFAULT_WORKFLOW = REPO / "workflows" / "denoise_segment.yaml"


def _push_through_node(orthanc: Orthanc, files, tmp_path, destination: dict, processor=None):
    uploaded = orthanc.upload(files)
    series_id = uploaded[0]["ParentSeries"]
    config = node_config(tmp_path / "node", orthanc.node_port, destination)
    with running_node(config, processor) as node:
        orthanc.post("/modalities/ctpipe/store", {"Resources": [series_id], "Synchronous": True})
        (job,) = wait_finished(node, 1, timeout=300)
        outputs = [o.path for o in node.queue.outputs(job.id)]
    assert job.state == "done", job.error
    assert job.calling_aet == orthanc.aet
    return outputs


def _check_results_in_orthanc(orthanc: Orthanc, sources, outputs) -> None:
    source_headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sources]
    first = source_headers[0]
    position = {
        str(h.SOPInstanceUID): [float(v) for v in h.ImagePositionPatient] for h in source_headers
    }
    series = {
        s["MainDicomTags"]["SeriesInstanceUID"]: s
        for s in orthanc.study_series(first.StudyInstanceUID)
    }
    assert len(series) == 3, sorted(series)
    source = series.pop(str(first.SeriesInstanceUID))
    by_modality = {s["MainDicomTags"]["Modality"]: (uid, s) for uid, s in series.items()}
    assert sorted(by_modality) == ["CT", "SEG"]
    derived_uid, derived = by_modality["CT"]
    seg_uid, seg = by_modality["SEG"]
    assert len(source["Instances"]) == len(derived["Instances"]) == len(sources)

    derived_sops = set()
    for instance in derived["Instances"]:
        tags = orthanc.instance_tags(instance)
        assert tags["PatientID"] == first.PatientID
        assert tags["FrameOfReferenceUID"] == first.FrameOfReferenceUID
        assert "DERIVED" in tags["ImageType"]
        (reference,) = tags["SourceImageSequence"]
        referenced = reference["ReferencedSOPInstanceUID"]
        assert referenced in position  # a source instance held by Orthanc
        ipp = [float(v) for v in tags["ImagePositionPatient"].split("\\")]
        np.testing.assert_allclose(ipp, position[referenced], atol=1e-3)
        derived_sops.add(tags["SOPInstanceUID"])

    (seg_instance,) = seg["Instances"]
    tags = orthanc.instance_tags(seg_instance)
    assert tags["StudyInstanceUID"] == first.StudyInstanceUID
    (referenced_series,) = tags["ReferencedSeriesSequence"]
    assert referenced_series["SeriesInstanceUID"] == derived_uid
    referenced = {
        i["ReferencedSOPInstanceUID"] for i in referenced_series["ReferencedInstanceSequence"]
    }
    assert referenced == derived_sops
    # the SEG in Orthanc is the file the node produced, pixel for pixel
    import requests

    stored = pydicom.dcmread(
        __import__("io").BytesIO(
            requests.get(f"{orthanc.url}/instances/{seg_instance}/file", timeout=30).content
        )
    )
    (produced,) = [pydicom.dcmread(p) for p in outputs if pydicom.dcmread(p).Modality == "SEG"]
    assert (
        stored.SOPInstanceUID == produced.SOPInstanceUID and seg_uid == produced.SeriesInstanceUID
    )
    np.testing.assert_array_equal(stored.pixel_array, produced.pixel_array)
    assert stored.pixel_array.any()


def test_orthanc_pushes_a_series_and_gets_results_by_c_store(
    tmp_path, clean_orthanc, pancreas_slices
):
    destination = {"kind": "dimse", "ae_title": clean_orthanc.aet, "port": clean_orthanc.dicom_port}
    outputs = _push_through_node(clean_orthanc, pancreas_slices, tmp_path, destination)
    _check_results_in_orthanc(clean_orthanc, pancreas_slices, outputs)


def test_orthanc_pushes_a_series_and_gets_results_by_stow_rs(
    tmp_path, clean_orthanc, pancreas_slices
):
    destination = {"kind": "dicomweb", "url": clean_orthanc.dicomweb}
    outputs = _push_through_node(clean_orthanc, pancreas_slices, tmp_path, destination)
    _check_results_in_orthanc(clean_orthanc, pancreas_slices, outputs)


def _pull_args(orthanc: Orthanc, mode: str) -> list[str]:
    if mode == "dicomweb":
        return ["--dicomweb", orthanc.dicomweb]
    args = ["--dimse", f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}", "--calling-ae", "CTPIPE"]
    if mode == "move":
        args += ["--retrieve", "move", "--move-port", str(orthanc.node_port)]
    return args


@pytest.mark.parametrize("mode", ["get", "move", "dicomweb"])
def test_pull_finds_and_retrieves_a_study(tmp_path, clean_orthanc, pancreas_slices, mode, capsys):
    clean_orthanc.upload(pancreas_slices)
    first = pydicom.dcmread(pancreas_slices[0], stop_before_pixels=True)
    out = tmp_path / "pulled"
    filters = ["--patient-id", str(first.PatientID), "--modality", "CT"]
    assert main(["pull", *_pull_args(clean_orthanc, mode), *filters, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 matching study(ies)" in printed and first.StudyInstanceUID in printed
    pulled = sorted(out.rglob("*.dcm"))
    assert {p.parent.relative_to(out).as_posix() for p in pulled} == {
        f"{first.StudyInstanceUID}/{first.SeriesInstanceUID}"
    }
    originals = {
        str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p in pancreas_slices
    }
    assert {p.stem for p in pulled} == set(originals)
    for path in pulled:
        ds = pydicom.dcmread(path)
        np.testing.assert_array_equal(ds.pixel_array, originals[path.stem].pixel_array)


def test_pull_filters_and_list(tmp_path, clean_orthanc, pancreas_slices, capsys):
    clean_orthanc.upload(pancreas_slices[:1])
    first = pydicom.dcmread(pancreas_slices[0], stop_before_pixels=True)
    date = str(first.StudyDate)
    args = ["pull", *_pull_args(clean_orthanc, "get"), "-o", str(tmp_path / "out"), "--list"]
    assert main([*args, "--patient-id", "NOBODY"]) == 0
    assert "0 matching study(ies)" in capsys.readouterr().out
    assert main([*args, "--study-date", f"{date}-{date}"]) == 0
    assert "1 matching study(ies)" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()  # --list retrieves nothing


def test_pull_into_a_processor(tmp_path, clean_orthanc, pancreas_slices, capsys):
    clean_orthanc.upload(pancreas_slices)
    out = tmp_path / "pulled"
    processor = ["--processor", "tests.pacs.processors:threshold_seg"]
    assert main(["pull", *_pull_args(clean_orthanc, "dicomweb"), "-o", str(out), *processor]) == 0
    results = sorted((out / "results").rglob("*.dcm"))
    modalities = sorted(str(pydicom.dcmread(p, stop_before_pixels=True).Modality) for p in results)
    assert modalities == ["CT"] * len(pancreas_slices) + ["SEG"]


def test_orthanc_through_the_default_workflow(tmp_path, clean_orthanc):
    from ctpipe.pacs.processor import WorkflowProcessor

    if not DEFAULT_WORKFLOW.exists():
        pytest.skip(f"{DEFAULT_WORKFLOW} is absent")
    try:
        processor = WorkflowProcessor(DEFAULT_WORKFLOW)
    except InputError as err:
        if "no such shipped weights" not in err.problem:
            raise
        pytest.skip(f"the default workflow's weights are not shipped yet: {err.problem}")
    sources = sorted(shared_path("dcmqi_ct3slice").glob("0?.dcm"))
    destination = {"kind": "dimse", "ae_title": clean_orthanc.aet, "port": clean_orthanc.dicom_port}
    _push_through_node(clean_orthanc, sources, tmp_path, destination, processor)

    first = pydicom.dcmread(sources[0], stop_before_pixels=True)
    source_sops = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in sources}
    series = {
        s["MainDicomTags"]["SeriesInstanceUID"]: s
        for s in clean_orthanc.study_series(first.StudyInstanceUID)
    }
    series.pop(str(first.SeriesInstanceUID))
    by_modality = {s["MainDicomTags"]["Modality"]: (uid, s) for uid, s in series.items()}
    assert sorted(by_modality) == ["CT", "SEG"]
    derived_uid, derived = by_modality["CT"]
    assert len(derived["Instances"]) == len(sources)
    derived_sops = set()
    for instance in derived["Instances"]:
        tags = clean_orthanc.instance_tags(instance)
        assert tags["PatientID"] == first.PatientID and "DERIVED" in tags["ImageType"]
        derived_sops.add(tags["SOPInstanceUID"])
    (seg_instance,) = by_modality["SEG"][1]["Instances"]
    tags = clean_orthanc.instance_tags(seg_instance)
    (referenced_series,) = tags["ReferencedSeriesSequence"]
    referenced = {
        i["ReferencedSOPInstanceUID"] for i in referenced_series["ReferencedInstanceSequence"]
    }
    # the SEG references a series Orthanc holds: the source or the derived one
    assert (referenced_series["SeriesInstanceUID"], referenced) in [
        (str(first.SeriesInstanceUID), source_sops),
        (derived_uid, derived_sops),
    ]
