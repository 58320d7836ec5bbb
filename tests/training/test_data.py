from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from ctpipe.errors import InputError
from ctpipe.training.denoise.config import DataConfig, PatchConfig, SimulatedPairsConfig
from ctpipe.training.denoise.data import (
    holdout_slices,
    patch_transforms,
    simulated_pairs,
    slice_transforms,
    split_pairs,
)
from tests.conftest import REPO, shared_path

MANIFEST = REPO / "data_manifests" / "aapm_ldct_pairs_shared.yaml"


def pairs(counts: dict[str, int]) -> list[dict]:
    return [
        {"image": f"{p}_q{z}", "label": f"{p}_f{z}", "patient": p, "z": -float(z)}
        for p, n in counts.items()
        for z in range(n)
    ]


def test_holdout_is_evenly_spaced_and_never_at_the_ends():
    kept, held = holdout_slices(pairs({"A": 10, "B": 3}), per_patient=2)
    by_patient = {p: sorted(e["z"] for e in held if e["patient"] == p) for p in "AB"}
    assert by_patient["A"] == [-6.0, -3.0]  # sorted z: -9..0; thirds of 10 slices
    assert by_patient["B"] == [-1.0, 0.0]
    assert len(kept) + len(held) == 13
    assert not {e["image"] for e in kept} & {e["image"] for e in held}


def test_holdout_needs_a_slice_left():
    with pytest.raises(ValueError, match="patient B has 2 slices, got 2"):
        holdout_slices(pairs({"A": 5, "B": 2}), per_patient=2)


def test_holdout_by_kernel_validates_every_kernel_of_each_patient():
    both = [{**e, "kernel": "D45"} for e in pairs({"A": 6})]
    both += [{**e, "image": e["image"] + "s", "kernel": "B30"} for e in pairs({"A": 3})]
    kept, held = holdout_slices(both, per_patient=1, by="kernel")
    assert sorted((e["kernel"], e["z"]) for e in held) == [("B30", -1.0), ("D45", -2.0)]
    assert len(kept) == 7
    # by patient, the 9 slices are sorted together and the kernel held out is chance
    _, held_by_patient = holdout_slices(both, per_patient=1)
    assert len(held_by_patient) == 1


def test_holdout_by_kernel_needs_a_slice_of_each_kernel_left():
    one_b30 = [{**e, "kernel": "D45"} for e in pairs({"A": 4})] + [
        {"image": "b", "label": "b", "patient": "A", "z": 0.5, "kernel": "B30"}
    ]
    with pytest.raises(ValueError, match="patient A kernel B30 has 1 slices, got 1"):
        holdout_slices(one_b30, per_patient=1, by="kernel")


@pytest.mark.parametrize(
    "data",
    [
        DataConfig(root="/nowhere", manifest=str(MANIFEST), train_patients=["L096", "L192"]),
        DataConfig(root="/nowhere", manifest=str(MANIFEST), validation_patients=["L192"]),
    ],
)
def test_test_split_is_refused_for_training_and_validation(data):
    with pytest.raises(InputError, match=r"\['L192'\] are in the manifest's 'test' split"):
        split_pairs(data)


@pytest.mark.shared_data
def test_split_of_the_shared_pairs():
    root = shared_path("aapm_ldct_pairs")
    split = split_pairs(
        DataConfig(root=str(root), manifest=str(MANIFEST), verify=True, validation_holdout=1)
    )
    assert {e["patient"] for e in split.train} == {"L096", "L143"}  # the manifest's train split
    assert len(split.train) == 19 and len(split.validation) == 2
    assert {e["patient"] for e in split.validation} == {"L096", "L143"}
    assert split.test_patients == ("L192",)


@pytest.mark.shared_data
def test_slice_chain_gives_unit_scale_2d_slices():
    root = shared_path("aapm_ldct_pairs")
    entry = split_pairs(DataConfig(root=str(root), train_patients=["L143"], kernel="B30")).train[0]
    out = slice_transforms()(entry)
    for key in ("image", "label"):
        assert type(out[key]) is torch.Tensor  # plain tensors: no metadata in the batches
        assert out[key].shape == (1, 512, 512) and out[key].dtype == torch.float32
        assert float(out[key].min()) > -0.1 and float(out[key].max()) < 1.0
    assert not torch.equal(out["image"], out["label"])


def test_patches_are_cut_alike_from_image_and_label():
    image = torch.arange(40.0 * 30).reshape(1, 40, 30)
    chain = patch_transforms(PatchConfig(size=(7, 5), per_slice=6))
    chain.set_random_state(3)
    out = chain({"image": image, "label": image + 1})
    assert len(out) == 6
    for patch in out:
        assert patch["image"].shape in ((1, 7, 5), (1, 5, 7))  # rotated by 90 degrees or not
        assert torch.equal(patch["label"], patch["image"] + 1)
    assert len({patch["image"].sum().item() for patch in out}) > 1


def test_simulated_pairs_without_the_simulator_say_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "ctpipe.simulate", None)  # import fails
    with pytest.raises(ImportError, match=r"data\.simulated needs ctpipe\.simulate"):
        simulated_pairs(SimulatedPairsConfig(["/nowhere"]))


def test_simulated_pairs_from_a_normal_dose_series(tmp_path):
    pytest.importorskip("ctpipe.simulate", reason="ctpipe.simulate is not available yet")
    from ctpipe.phantom import make_phantom, write_phantom

    series = write_phantom(tmp_path, make_phantom(shape=(48, 48, 2), seed=3)).dicom_folder
    spec = SimulatedPairsConfig([str(series)], dose_fraction=0.25, seed=1)
    items = simulated_pairs(spec)
    assert [item["k"] for item in items] == [0, 1]
    first = items[0]
    assert first["image"].shape == first["label"].shape == (1, 48, 48)
    assert first["image"].dtype == np.float32
    assert np.std(first["image"] - first["label"]) > 1.0  # HU: the simulated dose is noisier
    assert np.array_equal(simulated_pairs(spec)[0]["image"], first["image"])  # seeded
    chain = slice_transforms(from_files=False)(first)
    assert chain["image"].shape == (1, 48, 48)


def test_file_pairs_and_simulated_pairs_collate_in_one_batch(tmp_path):
    pytest.importorskip("ctpipe.simulate", reason="ctpipe.simulate is not available yet")
    from monai.data import list_data_collate

    from ctpipe.phantom import make_phantom, write_phantom

    files = write_phantom(tmp_path, make_phantom(shape=(48, 48, 6), seed=3))
    spec = SimulatedPairsConfig([str(files.dicom_folder)], dose_fraction=0.5, slice_step=4)
    simulated = simulated_pairs(spec)
    assert [item["k"] for item in simulated] == [0, 4]
    real = {
        "image": str(files.dicom_files[1]),
        "label": str(files.dicom_files[1]),
        "patient": "P1",
        "thickness": "3mm",
        "kernel": "",
        "z": 0.0,
    }
    batch = list_data_collate(
        [slice_transforms()(real), slice_transforms(from_files=False)(simulated[0])]
    )
    assert set(batch) == {"image", "label"}
    assert batch["image"].shape == (2, 1, 48, 48)


def test_training_slices_are_read_once_and_cached(tmp_path):
    """Reading happens when the cache is built: items still load after the files are gone."""
    import shutil

    from ctpipe.phantom import make_phantom, write_phantom
    from ctpipe.training.denoise.config import DenoiseTrainConfig, ModelConfig
    from ctpipe.training.denoise.data import DataSplit, build_datasets

    files = write_phantom(tmp_path / "data", make_phantom(shape=(40, 40, 2), seed=1))
    items = [
        {"image": str(f), "label": str(f), "patient": "P", "z": float(k)}
        for k, f in enumerate(files.dicom_files)
    ]
    config = DenoiseTrainConfig(
        ModelConfig(),
        DataConfig(root=str(tmp_path), train_patients=["P"]),
        str(tmp_path / "o"),
        patches=PatchConfig(size=(16, 16), per_slice=2),
    )
    train, _ = build_datasets(config, DataSplit(train=items, validation=[], simulated=[]))
    shutil.rmtree(tmp_path / "data")
    for _ in range(2):
        for index in range(len(train)):
            patches = train[index]
            assert len(patches) == 2 and patches[0]["image"].shape == (1, 16, 16)


def test_simulated_pairs_draw_doses_match_the_kernel_and_come_back_from_the_cache(
    tmp_path, monkeypatch
):
    from ctpipe.phantom import make_phantom, write_phantom
    from ctpipe.training.denoise import data as data_module

    series = write_phantom(tmp_path, make_phantom(shape=(48, 48, 3), seed=3)).dicom_folder
    spec = SimulatedPairsConfig(
        [str(series)],
        dose_range=[0.1, 0.5],
        kernel_matched=True,
        cache_dir=str(tmp_path / "cache"),
    )
    items = simulated_pairs(spec)
    doses = [item["dose"] for item in items]
    assert all(0.1 <= d <= 0.5 for d in doses) and len(set(doses)) == 3
    # the phantom's kernel is not a sharp one: the smooth (hann) filter
    assert {item["filter"] for item in items} == {"hann"}
    # a lower dose is noisier: the noise std falls as the dose rises
    noise = [float(np.std(i["image"] - i["label"])) for i in items]
    order = np.argsort(doses)
    assert noise[order[0]] > noise[order[-1]]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated again despite the cache")

    monkeypatch.setattr(data_module, "_simulate", no_simulation)
    again = simulated_pairs(spec)
    assert all(np.array_equal(a["image"], b["image"]) for a, b in zip(items, again, strict=True))
    assert [a["dose"] for a in again] == doses


def test_smooth_kernels_take_the_configured_filter_and_photon_scale(tmp_path):
    from ctpipe.phantom import make_phantom, write_phantom

    series = write_phantom(tmp_path, make_phantom(shape=(48, 48, 1), seed=3)).dicom_folder

    def noise(**settings) -> tuple[set[str], float]:
        spec = SimulatedPairsConfig(
            [str(series)], kernel_matched=True, cache_dir=str(tmp_path / "cache"), **settings
        )
        items = simulated_pairs(spec)
        return {i["filter"] for i in items}, float(np.std(items[0]["image"] - items[0]["label"]))

    hann_filters, hann = noise()
    cosine_filters, cosine = noise(smooth_filter="cosine")
    assert hann_filters == {"hann"} and cosine_filters == {"cosine"}
    assert cosine > hann  # cosine passes more of the high frequencies: more noise
    # noise std scales as 1 / sqrt(photons): 4 times the photons, half the noise
    _, quarter = noise(smooth_filter="cosine", smooth_photon_scale=4.0)
    assert quarter / cosine == pytest.approx(0.5, rel=0.05)
    # each setting has its own cache file; the default's name does not depend on the scale
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 3
    _, again = noise(smooth_photon_scale=1.0)
    assert again == hann and len(list((tmp_path / "cache").glob("*.npz"))) == 3


def test_smooth_filter_must_be_a_simulator_filter():
    with pytest.raises(ValueError, match=r"smooth_filter must be one of ramp, .*hann, got 'box'"):
        SimulatedPairsConfig(["/data/ct1"], smooth_filter="box")
    with pytest.raises(ValueError, match="smooth_photon_scale must be > 0, got 0"):
        SimulatedPairsConfig(["/data/ct1"], smooth_photon_scale=0)


def test_patch_stream_gives_each_group_its_share():
    from ctpipe.training.denoise.data import sampling_group
    from ctpipe.training.denoise.patch_stream import PatchStream, group_weights

    entries = [{"kernel": "D45"}] * 9 + [{"kernel": "B30"}] + [{"dose": 0.25, "filter": "hann"}] * 2
    slices = [
        {"image": torch.full((1, 8, 8), float(n)), "label": torch.zeros(1, 8, 8)}
        for n in range(len(entries))
    ]
    groups = [sampling_group(e) for e in entries]
    assert groups.count("real/sharp") == 9 and groups.count("simulated/smooth") == 2
    stream = PatchStream(
        slices, group_weights(groups), PatchConfig(size=(4, 4), per_slice=1), batch_size=30, seed=0
    )
    drawn = torch.cat([stream.batch(n)["image"][:, 0, 0, 0] for n in range(200)]).long()
    counts = np.bincount(drawn.numpy(), minlength=len(entries))
    by_group = {g: counts[[i for i, x in enumerate(groups) if x == g]].sum() for g in set(groups)}
    for count in by_group.values():  # 6000 draws, a third each
        assert abs(count / 6000 - 1 / 3) < 0.03
    assert counts[9] > 5 * counts[0]  # the lone B30 slice is drawn 9x as often as each D45 one


def test_simulated_slices_next_to_a_validation_slice_are_dropped():
    from ctpipe.training.denoise.data import drop_near_validation

    simulated = [
        {"patient": "L096_FD_3_SHARP", "series": "s", "z": -297.0},
        {"patient": "L096_FD_3_SHARP", "series": "s", "z": -250.0},
        {"patient": "pancreas", "series": "p", "z": -297.0},
    ]
    kept = drop_near_validation(simulated, [{"patient": "L096", "z": -299.0}])
    assert [(e["patient"], e["z"]) for e in kept] == [
        ("L096_FD_3_SHARP", -250.0),
        ("pancreas", -297.0),
    ]


def test_structure_share_draws_patch_centres_by_edge_strength():
    from ctpipe.training.denoise.patch_stream import PatchStream
    from ctpipe.training.denoise.patches import structure_weight

    # a flat slice with one bright square: only the square's outline has edges
    label = torch.zeros(1, 64, 64)
    label[:, 24:40, 24:40] = 1.0
    slices = [{"image": label.clone(), "label": label}]
    weight = structure_weight(label.numpy(), 0.6)
    near = np.zeros((64, 64), dtype=bool)
    near[18:46, 18:46] = True
    near[30:34, 30:34] = False  # the square's flat middle
    # the chance of a centre near the outline, from the weight map by hand
    expected = weight[0][near].sum() / weight.sum()
    assert weight.mean() == pytest.approx(1.0) and expected > 2 * near.mean()

    def share_near(structure_share: float) -> float:
        config = PatchConfig(
            size=(1, 1), per_slice=8, flip=False, rot90=False, structure_share=structure_share
        )
        stream = PatchStream(slices, [1.0], config, batch_size=8, seed=0)
        marker = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 64, 64)
        stream.slices = [{"image": marker, "label": label}]
        centres = torch.cat([stream.batch(n)["image"].flatten() for n in range(400)]).long()
        return float(near.flatten()[centres.numpy()].mean())

    assert share_near(0.6) == pytest.approx(expected, abs=0.03)
    assert share_near(0.0) == pytest.approx(near.mean(), abs=0.03)  # uniform


def test_structure_share_must_be_below_one():
    with pytest.raises(ValueError, match=r"structure_share must be in \[0, 1\), got 1"):
        PatchConfig(structure_share=1)
