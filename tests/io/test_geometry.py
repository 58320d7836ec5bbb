import numpy as np
import pytest

from ctpipe.io.geometry import (
    affine_lps,
    analyse_slice_positions,
    lps_to_ras,
    orientation_problem,
    reorient,
    slice_normal,
    spacing_of,
)

AXIAL = [1, 0, 0, 0, 1, 0]


def test_sorts_along_normal_not_input_order():
    layout = analyse_slice_positions([[0, 0, 9], [0, 0, 0], [0, 0, 6], [0, 0, 3]], AXIAL)
    assert layout.order == [1, 3, 2, 0]
    assert layout.spacing == pytest.approx(3.0)
    assert layout.regular


def test_sorts_along_oblique_normal():
    # rows along (cos, sin, 0), columns along z: the normal is in the x-y plane
    t = np.radians(30)
    iop = [np.cos(t), np.sin(t), 0, 0, 0, -1]
    normal = slice_normal(iop)
    positions = [normal * d for d in (4.0, -2.0, 1.0)]
    layout = analyse_slice_positions(positions, iop)
    assert layout.order == [1, 2, 0]
    np.testing.assert_allclose(layout.step, normal * 3.0, atol=1e-9)


def test_missing_slice_reports_the_gap():
    layout = analyse_slice_positions([[0, 0, z] for z in (0, 2, 4, 8, 10)], AXIAL)
    assert layout.problems == [
        "missing slice(s): gap of 4.000 mm between z=4.000 and z=8.000 "
        "(step 2.000 mm; about 1 slice missing)"
    ]


def test_uneven_spacing_reported():
    layout = analyse_slice_positions([[0, 0, z] for z in (0, 2, 4, 5.2, 7.2)], AXIAL)
    assert any(p.startswith("uneven spacing: gap of 1.200 mm") for p in layout.problems)


def test_duplicate_positions_reported():
    layout = analyse_slice_positions([[0, 0, z] for z in (0, 2, 2, 4)], AXIAL)
    assert layout.problems and layout.problems[0].startswith("duplicate slice positions")


def test_tilt_reported_with_angle():
    tilt = np.radians(15)
    positions = [[0, k * 3 * np.sin(tilt), k * 3 * np.cos(tilt)] for k in range(5)]
    layout = analyse_slice_positions(positions, AXIAL)
    assert layout.tilt_deg == pytest.approx(15.0, abs=1e-6)
    assert any("sheared by 15.00 degrees" in p for p in layout.problems)


def test_single_slice_uses_default_spacing():
    layout = analyse_slice_positions([[1, 2, 3]], AXIAL, default_spacing=2.5)
    assert layout.spacing == 2.5 and layout.regular
    np.testing.assert_allclose(layout.step, [0, 0, 2.5])


@pytest.mark.parametrize(
    ("iop", "match"),
    [
        ([1, 0, 0, 0.2, 1, 0], "not orthogonal"),
        ([0, 0, 0, 0, 1, 0], "zero direction cosine"),
        ([1, 0, 0, 0, 1], "6 finite numbers"),
        ([2, 0, 0, 0, 2, 0], "not unit vectors (lengths 2 and 2)"),
        ([0.5, 0, 0, 0, 1, 0], "not unit vectors (lengths 0.5 and 1)"),
    ],
)
def test_orientation_problems(iop, match):
    assert match in orientation_problem(iop)


def test_orientation_ok():
    assert orientation_problem([1, 0, 0, 0, 0, -1]) is None
    assert orientation_problem([0.999998, 0.00174, 0, -0.00174, 0.999998, 0]) is None


def test_affine_maps_pixel_centres_like_dicom():
    # DICOM: P(r, c) = IPP + row_cosine * c * col_spacing + col_cosine * r * row_spacing
    iop = [0.8, 0.6, 0, -0.6, 0.8, 0]
    ipp = [-10.0, 5.0, 30.0]
    a = affine_lps(iop, ipp, (0.5, 0.7), (0, 0, 2.0))  # PixelSpacing = (row, column)
    col, row = 7, 3
    expected = np.array(ipp) + np.array(iop[:3]) * col * 0.7 + np.array(iop[3:]) * row * 0.5
    np.testing.assert_allclose((a @ [col, row, 0, 1])[:3], expected)
    np.testing.assert_allclose((a @ [0, 0, 2, 1])[:3], np.array(ipp) + [0, 0, 4.0])
    assert spacing_of(a) == pytest.approx((0.7, 0.5, 2.0))


def test_lps_ras_round_trip():
    a = np.arange(16, dtype=float).reshape(4, 4)
    np.testing.assert_array_equal(lps_to_ras(lps_to_ras(a)), a)


def test_many_gaps_are_summarised():
    z = [0, 2, 4, 9, 11, 20, 22, 30, 41, 43]
    layout = analyse_slice_positions([[0, 0, v] for v in z], AXIAL)
    assert len(layout.problems) == 4
    assert layout.problems[-1] == "uneven spacing: 1 more gap(s) differ from the 2.000 mm step"


# --- reorient: against SimpleITK's DICOMOrient -----------------------------------------------


def _sitk_image(direction_lps: np.ndarray, shape_ijk: tuple[int, int, int], seed: int):
    """A SimpleITK image with this direction, its (i, j, k) array and its RAS affine."""
    import SimpleITK as sitk

    values = np.random.default_rng(seed).normal(size=shape_ijk).astype(np.float32)
    image = sitk.GetImageFromArray(values.transpose(2, 1, 0))  # SimpleITK arrays are (k, j, i)
    image.SetSpacing((0.7, 0.8, 3.0))
    image.SetOrigin((10.0, -20.0, 30.0))
    image.SetDirection(direction_lps.ravel().tolist())
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction_lps * np.array([0.7, 0.8, 3.0])
    affine_lps[:3, 3] = image.GetOrigin()
    return image, values, lps_to_ras(affine_lps)


@pytest.mark.parametrize(
    "columns",
    [
        ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),  # RAS, as a NIfTI file often stores it
        ((1, 0, 0), (0, 1, 0), (0, 0, -1)),  # LPI: slices from head to feet
        ((0, 1, 0), (1, 0, 0), (0, 0, 1)),  # i and j swapped (PLS)
        ((0, 0, 1), (1, 0, 0), (0, -1, 0)),  # a sagittal stack
    ],
)
def test_reorient_matches_simpleitk_dicomorient(columns):
    import SimpleITK as sitk

    direction = np.array(columns, dtype=float).T  # direction cosines as columns
    image, values, affine_ras = _sitk_image(direction, (5, 6, 7), seed=len(columns))
    expected = sitk.DICOMOrient(image, "LPS")
    turned, affine = reorient(values, affine_ras)
    assert np.array_equal(turned, sitk.GetArrayFromImage(expected).transpose(2, 1, 0))
    assert np.allclose(lps_to_ras(affine)[:3, 3], expected.GetOrigin())
    assert np.allclose(
        lps_to_ras(affine)[:3, :3],
        np.reshape(expected.GetDirection(), (3, 3)) * expected.GetSpacing(),
    )


def test_reorient_to_the_order_it_has_changes_nothing():

    values = np.arange(24.0).reshape(2, 3, 4)
    affine = lps_to_ras(np.diag([0.5, 0.5, 2.0, 1.0]))
    turned, same = reorient(values, affine)
    assert np.array_equal(turned, values) and np.allclose(same, affine)
