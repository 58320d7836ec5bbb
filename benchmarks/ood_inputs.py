"""Out-of-distribution test inputs for the guard benchmark (``bench_ood_guard.py``).

Every builder returns a :class:`Study`: float32 HU ``(i, j, k)`` and the voxel size in mm.
Two kinds:

* **Made from scratch** (seeded): a head (skull, brain, ventricles), a neck (vertebra,
  airway, muscles), two thighs (skin, fat, muscle, femur), ctpipe's abdominal phantom
  (the demo's input), the Shepp-Logan head phantom in HU, pydicom's ``MR_small.dcm``.
* **Made from an in-distribution CT** (``base``): MR-like intensity maps (T1-like: fat
  bright, fluid dark; T2-like: fluid bright), heavy noise, metal with streaks, wrong HU
  scaling (the intercept left out; an image normalised to [0, 1] saved as HU), and
  "legs" cut from the base (two discs of its lateral tissue side by side in air).

A second, **held-out** family (``bench_ood_guard.py --held-out``) holds kinds that were
not looked at while the guard's statistics, calibration and threshold were chosen:

* from an in-distribution CT: a child-sized body, coronal and sagittal reformats
  presented as axial slices, cone-beam cupping and rings, an image clipped to the lung
  window, 8-bit display values, organs oversaturated with contrast, a thick-slab MIP,
  PET- and SPECT-like activity maps, a zoomed 150 mm field of view, slices turned by 90
  degrees;
* from scratch or from files pydicom carries: a lower leg in a 160 mm field of view, two
  real head CTs, a real abdominal MR, a whole-body bone scintigram, an ultrasound image
  and ``CT_small.dcm`` (an 85 mm field of view around the spine);
* **normal variants** that should *not* be flagged: 20 HU of added noise, a tighter field
  of view holding the whole body, the patient off centre and turned by 6 degrees.

A third, **fresh** family (``--fresh``) and a **fourth** one (``--fresh2``: photon
starvation, detector-fault rings, oral contrast, a sharp bone kernel, the couch alone,
signed values read as unsigned, zeroed rows, a contrast-filled tube, a PET-CT attenuation
CT, a 40 keV monoenergetic image, a localizer; normal variants: mirrored, a smoother
kernel, a calibration drift, -3024 padding outside the scan circle, a wider field of view)
were each fixed before the guard version they test was designed, and so was a **fifth**
one (``--fresh3``: a QA water phantom with rods, burned-in annotations, a dual-energy iodine
map, a CT myelogram, a prone scan, a slab MinIP, bones removed from a CTA, a bismuth breast
shield, strong lossy JPEG compression, missing pixel spacing; normal variants: the
calibration 5 HU off, the patient turned by 3 degrees, 60 % of the dose, a slightly sharper
kernel, a 1.5 times finer matrix), and a **sixth** one (``--fresh4``: an inverted grey scale,
byte-swapped values, a subtraction series, a film sheet of 3 x 3 slices, an MR-derived
synthetic CT, a tissue label map, a dose report screen capture, a magnified view with its old
pixel spacing, rows read one pixel too long, a sparse-view reconstruction; normal variants:
ECG electrodes, 100 kVp, thinner slices, a moderate iterative reconstruction, the table
20 mm lower), and a **seventh** one (``--fresh5``: pixel data read from a late offset, bit
errors, two levels superposed, an image smoothed by a 5 mm Gaussian, a limited-angle
reconstruction, a disc filled by biharmonic inpainting; normal variants: a portal venous
phase, a matrix twice as fine, a blanket over the body), and an **eighth** one
(``--fresh6``: blank slices, a dense venous contrast bolus, a preview scaled up, non-square
pixels declared square, a band of rows shifted sideways, detector banding; normal variants:
140 kVp, a slimmer patient), and a **ninth** one (``--fresh7``: gamma-mapped values, CT
colonography, posterised values, a mirrored half, a water bath, a gain field; normal
variants: arms down, a nasogastric tube), and a **tenth** one (``--fresh8``:
pneumoperitoneum, ascites, a white noise texture, slice-to-slice flicker, a biopsy needle in
a half-dose CT-fluoroscopy image, motion blur front to back; normal variants: more
subcutaneous fat, a positioning board).

Example:
    >>> base = Study("ct", np.full((64, 64, 2), -1000.0, np.float32), (6.0, 6.0, 3.0))
    >>> heavy_noise(base, sigma_hu=150.0, seed=0).hu.shape
    (64, 64, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Study:
    """One volume: name, HU ``(i, j, k)`` and voxel size (mm)."""

    name: str
    hu: np.ndarray
    spacing: tuple[float, float, float]


def _grid(shape: tuple[int, int], pixel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Millimetre coordinates ``(x, y)`` of an ``(i, j)`` slice centred on 0."""
    i = (np.arange(shape[0]) - (shape[0] - 1) / 2) * pixel_mm
    j = (np.arange(shape[1]) - (shape[1] - 1) / 2) * pixel_mm
    return np.meshgrid(i, j, indexing="ij")


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    white = rng.normal(0.0, 1.0, shape)
    correlated = gaussian_filter(white, sigma=(0.7, 0.7, 0)[: len(shape)])
    return (correlated / correlated.std() * sigma).astype(np.float32)


def head(slices: int = 12, seed: int = 0, pixel_mm: float = 0.5) -> Study:
    """An axial head from skull base to vertex: skull, grey/white matter, ventricles."""
    rng = np.random.default_rng(seed)
    x, y = _grid((440, 440), pixel_mm)
    hu = np.full((440, 440, slices), -1000.0, np.float32)
    for k in range(slices):
        t = k / max(slices - 1, 1)
        scale = 1.0 - 0.45 * t**2  # the head narrows towards the vertex
        a, b = 72.0 * scale, 92.0 * scale
        slice_hu = hu[:, :, k]
        slice_hu[_ellipse(x, y, 0, 0, a + 4, b + 4)] = 20.0  # scalp
        slice_hu[_ellipse(x, y, 0, 0, a, b)] = 1300.0  # skull
        slice_hu[_ellipse(x, y, 0, 0, a - 7, b - 7)] = 38.0  # grey matter
        slice_hu[_ellipse(x, y, 0, 0, a - 14, b - 16)] = 28.0  # white matter
        if 0.2 < t < 0.7:
            for side in (-1, 1):
                slice_hu[_ellipse(x, y, side * 8, -5, 5, 22 * scale)] = 5.0  # ventricles
        if t < 0.25:  # skull base: sinuses (air) and petrous bone
            slice_hu[_ellipse(x, y, 0, -60 * scale, 12, 10)] = -950.0
            for side in (-1, 1):
                slice_hu[_ellipse(x, y, side * 40 * scale, 10, 10, 6)] = 1500.0
    hu += _noise(rng, hu.shape, 6.0)
    return Study("head (phantom)", hu, (pixel_mm, pixel_mm, 5.0))


def neck(slices: int = 10, seed: int = 1, pixel_mm: float = 0.5) -> Study:
    """An axial neck: round soft tissue, a vertebra, the airway, fat planes."""
    rng = np.random.default_rng(seed)
    x, y = _grid((320, 320), pixel_mm)
    hu = np.full((320, 320, slices), -1000.0, np.float32)
    for k in range(slices):
        s = hu[:, :, k]
        s[_ellipse(x, y, 0, 0, 62, 55)] = -90.0  # subcutaneous fat
        s[_ellipse(x, y, 0, 0, 57, 50)] = 45.0  # muscle and glands
        for side in (-1, 1):
            s[_ellipse(x, y, side * 28, -5, 7, 7)] = 150.0  # carotid (contrast)
            s[_ellipse(x, y, side * 40, 5, 6, 6)] = 120.0  # jugular
        s[_ellipse(x, y, 0, -22, 11, 9)] = -1000.0  # airway
        s[_ellipse(x, y, 0, 15, 16, 13)] = 700.0  # vertebral body (cortex)
        s[_ellipse(x, y, 0, 15, 12, 9)] = 250.0  # cancellous bone
        s[_ellipse(x, y, 0, 33, 6, 6)] = 30.0  # spinal cord
    hu += _noise(rng, hu.shape, 8.0)
    return Study("neck (phantom)", hu, (pixel_mm, pixel_mm, 3.0))


def thighs(slices: int = 10, seed: int = 2, pixel_mm: float = 0.8) -> Study:
    """Two thighs side by side: skin and fat, muscle, femoral cortex and marrow."""
    rng = np.random.default_rng(seed)
    x, y = _grid((512, 512), pixel_mm)
    hu = np.full((512, 512, slices), -1000.0, np.float32)
    for k in range(slices):
        s = hu[:, :, k]
        r = 78.0 - 2.0 * k
        for side in (-1, 1):
            cx = side * 95.0
            s[_ellipse(x, y, cx, 0, r, r * 0.9)] = -100.0
            s[_ellipse(x, y, cx, 0, r - 15, r * 0.9 - 15)] = 50.0
            s[_ellipse(x, y, cx + side * 5, 5, 15, 15)] = 1400.0
            s[_ellipse(x, y, cx + side * 5, 5, 9, 9)] = -60.0
    hu += _noise(rng, hu.shape, 10.0)
    return Study("thighs (phantom)", hu, (pixel_mm, pixel_mm, 5.0))


def abdominal_phantom(seed: int = 0) -> Study:
    """ctpipe's own synthetic abdomen (:func:`ctpipe.phantom.make_phantom`), the demo's input."""
    from ctpipe.phantom import make_phantom

    phantom = make_phantom(shape=(192, 192, 32), spacing=(2.0, 2.0, 3.0), seed=seed)
    return Study("ctpipe abdominal phantom", phantom.hu.astype(np.float32), (2.0, 2.0, 3.0))


def shepp_logan(slices: int = 6) -> Study:
    """The Shepp-Logan head phantom (scikit-image) mapped to HU (skull 1000, brain 20-40)."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    image = resize(shepp_logan_phantom(), (256, 256), order=1, anti_aliasing=True)
    hu = np.where(image > 0, -1000.0 + image * 1000.0 * 2.0, -1000.0)  # 1 -> 1000, 0.2 -> -600
    hu = np.where((image > 0.15) & (image < 0.5), 25.0 + (image - 0.2) * 200.0, hu)
    volume = np.repeat(hu.T[:, :, None], slices, axis=2).astype(np.float32)
    return Study("Shepp-Logan (HU)", volume, (0.8, 0.8, 5.0))


def mr_small(pixel_mm: float | None = None) -> Study:
    """pydicom's ``MR_small.dcm`` (64 x 64 MR) read as if its values were HU.

    Args:
        pixel_mm: Pixel size to claim instead of the file's 0.3125 mm (a 20 mm crop), e.g.
            3.5 for a head-sized field of view.
    """
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    image = ds.pixel_array.astype(np.float32).T[:, :, None]
    size = float(ds.PixelSpacing[0]) if pixel_mm is None else pixel_mm
    name = "MR_small (pydicom)" + ("" if pixel_mm is None else f" at {pixel_mm:g} mm")
    return Study(name, np.repeat(image, 2, axis=2), (size, size, 5.0))


def mr_like(base: Study, weighting: str = "t1", seed: int = 0) -> Study:
    """An MR-like intensity map of a CT: tissue classes by HU mapped to MR signal (0-1000).

    T1-like: fat bright (800), soft tissue 350, fluid 150, bone and air dark; T2-like:
    fluid bright (900), fat 600, soft tissue 250. A smooth bias field and Rician-like
    noise are added.
    """
    rng = np.random.default_rng(seed)
    hu = base.hu
    bounds = [(-2000, -500), (-500, -30), (-30, 20), (20, 200), (200, 5000)]
    signals = {"t1": (20, 800, 150, 350, 60), "t2": (20, 600, 900, 250, 40)}[weighting]
    levels = [(low, high, value) for (low, high), value in zip(bounds, signals, strict=True)]
    signal = np.zeros_like(hu)
    for low, high, value in levels:
        signal[(hu >= low) & (hu < high)] = value
    x, y = _grid(hu.shape[:2], 1.0)
    bias = 1.0 + 0.3 * (x / np.abs(x).max())[:, :, None] * (y / np.abs(y).max())[:, :, None]
    signal = signal * bias + np.abs(_noise(rng, hu.shape, 25.0))
    name = f"{base.name}: MR-like {weighting.upper()}"
    return Study(name, signal.astype(np.float32), base.spacing)


def heavy_noise(base: Study, sigma_hu: float = 150.0, seed: int = 0) -> Study:
    """The base with correlated Gaussian noise of ``sigma_hu`` added (padding kept)."""
    rng = np.random.default_rng(seed)
    inside = base.hu > -1024
    noisy = base.hu + _noise(rng, base.hu.shape, sigma_hu) * inside
    return Study(f"{base.name}: noise {sigma_hu:g} HU", noisy.astype(np.float32), base.spacing)


def metal_streaks(base: Study, seed: int = 0, streaks: int = 14) -> Study:
    """The base with a metal implant and bright/dark streaks through it.

    The implant (a disc 8-14 mm across, in the body, on every slice) is stored at 3071 HU,
    the top of the 12-bit range where metal saturates on most scanners; streaks are lines
    through it at evenly spread angles, alternating +600 / -600 HU and fading with distance.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.copy()
    pixel = base.spacing[0]
    x, y = _grid(hu.shape[:2], pixel)
    body = body_mask(hu)
    for k in range(hu.shape[2]):
        inside = np.argwhere(body[:, :, k])
        if inside.size == 0:
            continue
        ci, cj = inside[rng.integers(len(inside))]
        cx, cy = x[ci, cj], y[ci, cj]
        radius = rng.uniform(4.0, 7.0)
        distance = np.hypot(x - cx, y - cy)
        streak = _streaks(distance, np.arctan2(y - cy, x - cx), rng, streaks, 600.0, 120.0)
        slice_hu = hu[:, :, k]
        slice_hu += (streak * body[:, :, k]).astype(np.float32)
        slice_hu[distance <= radius] = 3071.0
    return Study(f"{base.name}: metal streaks", hu, base.spacing)


def _streaks(
    distance: np.ndarray,
    angle: np.ndarray,
    rng: np.random.Generator,
    count: int,
    amplitude_hu: float,
    fade_mm: float,
) -> np.ndarray:
    """``count`` lines through a point at evenly spread angles (each jittered by 0.05 rad).

    Alternately ``+amplitude_hu`` and ``-amplitude_hu``, 1.5 mm wide (Gaussian), fading as
    ``exp(-distance / fade_mm)``; ``distance`` (mm) and ``angle`` (rad) are each pixel's
    polar coordinates about the point.
    """
    streak = np.zeros_like(distance)
    for n in range(count):
        theta = np.pi * n / count + rng.uniform(-0.05, 0.05)
        across = np.abs(np.sin(angle - theta)) * distance
        sign = 1.0 if n % 2 == 0 else -1.0
        streak += sign * amplitude_hu * np.exp(-((across / 1.5) ** 2)) * np.exp(-distance / fade_mm)
    return streak


def missing_intercept(base: Study) -> Study:
    """Stored values read as HU: the RescaleIntercept of -1024 left out (air at 24)."""
    return Study(f"{base.name}: intercept left out", base.hu + 1024.0, base.spacing)


def normalised(base: Study) -> Study:
    """An image normalised to [0, 1] over [-1024, 3072] HU and saved as if it were HU."""
    hu = np.clip((base.hu + 1024.0) / 4096.0, 0.0, 1.0).astype(np.float32)
    return Study(f"{base.name}: normalised [0, 1]", hu, base.spacing)


def legs_from(base: Study, diameter_mm: float = 150.0) -> Study:
    """Two discs of the base's lateral tissue, side by side in air: thigh-like cuts.

    Each slice's body is found; discs of ``diameter_mm`` centred a quarter of the body's
    width in from its left and right edges are copied next to each other, 30 mm apart.
    """
    from ctpipe.body_mask import body_mask

    hu = base.hu
    pixel = base.spacing[0]
    radius = diameter_mm / 2 / pixel
    out = np.full_like(hu, -1000.0)
    body = body_mask(hu)
    size_i, size_j = hu.shape[:2]
    ii, jj = np.mgrid[:size_i, :size_j]
    gap = 15.0 / pixel
    for k in range(hu.shape[2]):
        columns = np.flatnonzero(body[:, :, k].any(axis=1))
        rows = np.flatnonzero(body[:, :, k].any(axis=0))
        if columns.size == 0:
            continue
        width = columns[-1] - columns[0]
        cj = (rows[0] + rows[-1]) / 2
        for source_i, target_i in (
            (columns[0] + width / 4, size_i / 2 - radius - gap),
            (columns[-1] - width / 4, size_i / 2 + radius + gap),
        ):
            disc = (ii - target_i) ** 2 + (jj - cj) ** 2 <= radius**2
            shift = round(source_i - target_i)
            src_i = np.clip(ii + shift, 0, size_i - 1)
            out[:, :, k][disc] = hu[:, :, k][src_i[disc], jj[disc]]
    return Study(f"{base.name}: legs cut out", out, base.spacing)


# Held-out family: kinds of input not looked at while the guard was designed and tuned
# (``bench_ood_guard.py --held-out``), and normal variants that should pass.


def _body_centre(hu: np.ndarray) -> tuple[float, float]:
    """Centre ``(i, j)`` of the body's bounding box over all slices (the image centre if none)."""
    from ctpipe.body_mask import body_bbox_centre, body_mask

    centre = body_bbox_centre(body_mask(hu))
    return centre if centre is not None else ((hu.shape[0] - 1) / 2, (hu.shape[1] - 1) / 2)


def _affine_slices(
    hu: np.ndarray, matrix: np.ndarray, offset: np.ndarray, cval: float, shape: tuple[int, int]
) -> np.ndarray:
    """Every slice resampled (linear) at ``matrix @ output_index + offset`` of the input."""
    from scipy.ndimage import affine_transform

    out = np.empty((*shape, hu.shape[2]), np.float32)
    for k in range(hu.shape[2]):
        out[:, :, k] = affine_transform(
            hu[:, :, k], matrix, offset, output_shape=shape, order=1, cval=cval
        )
    return out


def paediatric(base: Study, scale: float = 0.5) -> Study:
    """A child-sized body: every slice shrunk by ``scale`` about the body's centre, same pixels.

    Example:
        >>> base = Study("ct", np.full((32, 32, 1), -1000.0, np.float32), (1.0, 1.0, 3.0))
        >>> paediatric(base).hu.shape
        (32, 32, 1)
    """
    hu = np.maximum(base.hu, -1024.0)  # scanner padding (e.g. -3024) becomes air
    centre = np.asarray(_body_centre(hu))
    matrix = np.eye(2) / scale  # output pixel p shows input pixel c + (p - c) / scale
    shrunk = _affine_slices(hu, matrix, centre - matrix @ centre, -1000.0, hu.shape[:2])
    return Study(f"{base.name}: child-sized (x{scale:g})", shrunk, base.spacing)


def reformat(base: Study, plane: str = "coronal", slices: int = 16) -> Study:
    """Coronal or sagittal planes of a volume presented as axial slices (a misfiled MPR).

    Each plane through the body (``slices`` of them, spread evenly) becomes one slice
    ``(i or j, k)``, resampled to the base's in-plane pixel size along ``k``.

    Args:
        base: A volume with contiguous slices.
        plane: ``"coronal"`` (fixed ``j``) or ``"sagittal"`` (fixed ``i``).
        slices: At most this many planes.
    """
    from scipy.ndimage import zoom

    from ctpipe.anomaly.guard_statistics import choose_slices
    from ctpipe.body_mask import body_mask

    axis = {"sagittal": 0, "coronal": 1}[plane]
    present = np.flatnonzero(body_mask(base.hu).any(axis=(1 - axis, 2)))
    chosen = present[choose_slices(len(present), slices)]
    pixel = base.spacing[1 - axis]
    factor = (1.0, base.spacing[2] / pixel)
    planes = [zoom(np.take(base.hu, p, axis=axis), factor, order=1) for p in chosen]
    volume = np.stack(planes, axis=2).astype(np.float32)
    return Study(f"{base.name}: {plane} reformat", volume, (pixel, pixel, base.spacing[axis]))


def cone_beam(
    base: Study, cupping_hu: float = 150.0, ring_hu: float = 40.0, rings: int = 12, seed: int = 0
) -> Study:
    """Cone-beam-like artifacts: cupping (the body's centre darker) and rings.

    Cupping lowers the body by ``cupping_hu * (1 - (r / R)^2)``, ``r`` the distance from the
    body's centre and ``R`` its equivalent radius. Rings are centred on the image centre
    (the rotation axis), the same on every slice (a detector fault), 1 mm wide, with
    amplitudes of ``±ring_hu`` at radii drawn between 10 mm and the field of view's edge.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    pixel = base.spacing[0]
    x, y = _grid(base.hu.shape[:2], pixel)
    iso = np.hypot(x, y)
    radii = rng.uniform(10.0, iso.max() * 0.7, rings)
    signs = rng.choice([-1.0, 1.0], rings)
    ring = sum(
        s * ring_hu * np.exp(-(((iso - r) / 1.0) ** 2)) for r, s in zip(radii, signs, strict=True)
    )
    body = body_mask(base.hu)
    hu = base.hu.copy()
    for k in range(hu.shape[2]):
        inside = body[:, :, k]
        if not inside.any():
            continue
        ci, cj = np.argwhere(inside).mean(axis=0)
        r = np.hypot(*np.mgrid[: hu.shape[0], : hu.shape[1]] - np.array([ci, cj])[:, None, None])
        big_r = np.sqrt(inside.sum() / np.pi)
        cupping = cupping_hu * np.clip(1.0 - (r / big_r) ** 2, 0.0, 1.0)
        hu[:, :, k] += ((ring - cupping) * inside).astype(np.float32)
    return Study(f"{base.name}: cone-beam cupping and rings", hu, base.spacing)


def lung_window(base: Study, level: float = -600.0, width: float = 1500.0) -> Study:
    """An image saved clipped to a display window (lung: -1350 to 150 HU), bone lost."""
    low, high = level - width / 2, level + width / 2
    clipped = np.clip(base.hu, low, high).astype(np.float32)
    return Study(f"{base.name}: clipped to [{low:g}, {high:g}] HU", clipped, base.spacing)


def display_8bit(base: Study, level: float = 40.0, width: float = 400.0) -> Study:
    """8-bit display values (0-255 over a soft-tissue window) saved as if they were HU."""
    unit = np.clip((base.hu - (level - width / 2)) / width, 0.0, 1.0)
    return Study(
        f"{base.name}: 8-bit display", np.round(unit * 255).astype(np.float32), base.spacing
    )


def contrast_oversaturated(base: Study, boost_hu: float = 300.0) -> Study:
    """Organs and vessels made ``boost_hu`` brighter, as if flooded with contrast agent.

    Body pixels whose HU smoothed over 2 mm lie in [20, 100] (parenchyma, muscle, blood)
    are raised by ``boost_hu``, with a 1 mm soft edge; fat, air and bone stay.
    """
    from scipy.ndimage import gaussian_filter

    from ctpipe.body_mask import body_mask

    pixel = base.spacing[0]
    smooth = gaussian_filter(base.hu, (2.0 / pixel, 2.0 / pixel, 0))
    organs = body_mask(base.hu) & (smooth >= 20.0) & (smooth <= 100.0)
    weight = gaussian_filter(organs.astype(np.float32), (1.0 / pixel, 1.0 / pixel, 0))
    hu = (base.hu + boost_hu * weight).astype(np.float32)
    return Study(f"{base.name}: contrast +{boost_hu:g} HU in organs", hu, base.spacing)


def slab_mip(base: Study, slab_mm: float = 20.0, sigma_mm: float = 1.5) -> Study:
    """A thick-slab maximum intensity projection, low-pass filtered in plane.

    Slice ``k`` becomes the maximum over the slices within ``slab_mm / 2`` of it, then a
    Gaussian of ``sigma_mm`` (0: none) smooths it.
    """
    from scipy.ndimage import gaussian_filter, maximum_filter1d

    half = round(slab_mm / base.spacing[2] / 2)
    mip = maximum_filter1d(base.hu, size=2 * half + 1, axis=2, mode="nearest")
    if sigma_mm > 0:
        pixel = base.spacing[0]
        mip = gaussian_filter(mip, (sigma_mm / pixel, sigma_mm / pixel, 0))
    return Study(f"{base.name}: {slab_mm:g} mm slab MIP", mip.astype(np.float32), base.spacing)


def emission_map(base: Study, modality: str = "PET", seed: int = 0) -> Study:
    """A PET- or SPECT-like activity map of the base: smooth, positive, no HU at all.

    Uptake (SUV) by tissue class (air 0, lung 0.4, fat 0.5, soft tissue 1.5, bone 1.0)
    plus three hot spots (SUV 8, 10-20 mm) in the body, blurred to the modality's
    resolution (PET 7 mm, SPECT 12 mm FWHM) and given counting noise. PET values are
    activity concentrations (Bq/mL, SUV 1 = 5,300 Bq/mL), SPECT values counts (SUV 1 = 40).
    """
    from scipy.ndimage import gaussian_filter

    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    fwhm, per_suv = {"PET": (7.0, 5300.0), "SPECT": (12.0, 40.0)}[modality]
    hu = base.hu
    suv = np.select(
        [hu <= -900, hu <= -500, hu <= -30, hu <= 200], [0.0, 0.4, 0.5, 1.5], 1.0
    ).astype(np.float64)
    pixel = base.spacing[0]
    x, y = _grid(hu.shape[:2], pixel)
    body = body_mask(hu)
    for k in range(hu.shape[2]):
        inside = np.argwhere(body[:, :, k])
        for _ in range(3 if inside.size else 0):
            ci, cj = inside[rng.integers(len(inside))]
            spot = _ellipse(x, y, x[ci, cj], y[ci, cj], *(rng.uniform(5.0, 10.0, 2)))
            suv[:, :, k][spot & body[:, :, k]] = 8.0
    sigma = fwhm / 2.355 / pixel
    expected = gaussian_filter(suv, (sigma, sigma, 0)) * per_suv
    noisy = rng.poisson(np.maximum(expected, 0.0) / per_suv * 40.0) * (per_suv / 40.0)
    return Study(f"{base.name}: {modality}-like map", noisy.astype(np.float32), base.spacing)


def small_fov(base: Study, fov_mm: float = 150.0, matrix: int = 512) -> Study:
    """A zoomed reconstruction: ``fov_mm`` square around the body's centre, ``matrix`` pixels."""
    hu = base.hu
    pixel = base.spacing[0]
    step = fov_mm / matrix / pixel  # input pixels per output pixel
    centre = np.asarray(_body_centre(hu))
    start = centre - (matrix - 1) / 2 * step
    zoomed = _affine_slices(hu, np.eye(2) * step, start, float(hu.min()), (matrix, matrix))
    size = fov_mm / matrix
    name = f"{base.name}: {fov_mm:g} mm field of view"
    return Study(name, zoomed, (size, size, base.spacing[2]))


def rotated_90(base: Study) -> Study:
    """Every slice turned by 90 degrees (rows and columns swapped in the header's sense)."""
    turned = np.ascontiguousarray(np.rot90(base.hu, axes=(0, 1)))
    spacing = (base.spacing[1], base.spacing[0], base.spacing[2])
    return Study(f"{base.name}: rotated 90°", turned, spacing)


def lower_leg(slices: int = 8, seed: int = 3, fov_mm: float = 160.0, matrix: int = 512) -> Study:
    """One lower leg in a small field of view: skin, fat, muscle, tibia and fibula."""
    rng = np.random.default_rng(seed)
    pixel = fov_mm / matrix
    x, y = _grid((matrix, matrix), pixel)
    hu = np.full((matrix, matrix, slices), -1000.0, np.float32)
    for k in range(slices):
        s = hu[:, :, k]
        r = 55.0 - 1.5 * k
        s[_ellipse(x, y, 0, 0, r, r * 0.85)] = -100.0  # skin and fat
        s[_ellipse(x, y, 0, 0, r - 8, r * 0.85 - 8)] = 50.0  # muscle
        s[_ellipse(x, y, 0, -18, 14, 12)] = 1500.0  # tibia cortex
        s[_ellipse(x, y, 0, -18, 8, 7)] = -40.0  # marrow
        s[_ellipse(x, y, 25, 8, 6, 6)] = 1300.0  # fibula
    hu += _noise(rng, hu.shape, 12.0)
    return Study("lower leg, 160 mm field of view (phantom)", hu, (pixel, pixel, 5.0))


def pydicom_image(filename: str, pixel_mm: float | None = None) -> Study:
    """One image of pydicom's test files as if it were HU (rescale applied, colour to luminance).

    Args:
        filename: A name for :func:`pydicom.data.get_testdata_file`, e.g. ``"693_J2KI.dcm"``.
        pixel_mm: Pixel size when the file has none (e.g. ultrasound), default 0.3 mm.
    """
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file(filename))
    image = ds.pixel_array.astype(np.float32)
    if ds.SamplesPerPixel == 3:
        image = image @ np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luma
    image = image * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    size = float(ds.PixelSpacing[0]) if "PixelSpacing" in ds else (pixel_mm or 0.3)
    volume = np.repeat(image.T[:, :, None], 2, axis=2)
    return Study(f"{filename} (pydicom, {ds.Modality})", volume, (size, size, 5.0))


def fov_crop(base: Study, margin_mm: float = 20.0) -> Study:
    """Normal variant: a tighter reconstruction field of view that still holds the whole body.

    The base's matrix is kept and its pixels made finer, so that the field of view just
    holds the body's bounding box (over all slices) plus ``margin_mm`` on each side, centred
    on it.

    Raises:
        ValueError: The body and margins already fill the base's field of view.
    """
    from ctpipe.body_mask import body_mask

    hu = base.hu
    pixel = base.spacing[0]
    union = body_mask(hu).any(axis=2)
    lows, highs, centre = [], [], []
    for axis in (0, 1):
        present = np.flatnonzero(union.any(axis=1 - axis))
        lows.append(present[0])
        highs.append(present[-1])
        centre.append((present[0] + present[-1]) / 2)
    needed = (np.asarray(highs) - np.asarray(lows) + 1) + 2 * margin_mm / pixel
    step = float(np.max(needed / np.asarray(hu.shape[:2])))
    if step >= 1.0:
        raise ValueError(f"{base.name}: the body fills the field of view; no tighter one holds it")
    start = np.asarray(centre) - (np.asarray(hu.shape[:2]) - 1) / 2 * step
    cropped = _affine_slices(hu, np.eye(2) * step, start, float(hu.min()), hu.shape[:2])
    size = pixel * step
    name = f"{base.name}: field of view {hu.shape[0] * size:.0f} mm"
    return Study(name, cropped, (size, size, base.spacing[2]))


def off_centre(
    base: Study, shift_mm: tuple[float, float] = (25.0, -20.0), angle_deg: float = 6.0
) -> Study:
    """Normal variant: the patient lying off the table's centre and slightly turned."""
    hu = base.hu
    pixel = base.spacing[0]
    theta = np.deg2rad(angle_deg)
    matrix = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = (np.asarray(hu.shape[:2]) - 1) / 2
    offset = centre - matrix @ centre - np.asarray(shift_mm) / pixel
    moved = _affine_slices(hu, matrix, offset, float(hu.min()), hu.shape[:2])
    name = f"{base.name}: off centre {shift_mm[0]:g}, {shift_mm[1]:g} mm, turned {angle_deg:g}°"
    return Study(name, moved, base.spacing)


# Fresh family (``bench_ood_guard.py --fresh``): kinds, or clearly new realisations, that
# neither the tuned nor the held-out family holds. Fixed before the guard's second version
# was designed, and scored once with it.


def rescale_slope(base: Study, slope: float = 2.0) -> Study:
    """A wrong RescaleSlope: stored values ``hu + 1024`` rescaled with ``slope`` instead of 1."""
    hu = ((base.hu + 1024.0) * slope - 1024.0).astype(np.float32)
    return Study(f"{base.name}: rescale slope {slope:g}", hu, base.spacing)


def hu_shift(base: Study, shift_hu: float = -1000.0) -> Study:
    """Every value moved by ``shift_hu`` (the intercept applied twice: air at -2024)."""
    return Study(f"{base.name}: HU {shift_hu:+g}", base.hu + shift_hu, base.spacing)


def _body_extent(body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``(i, j)`` and half-extent ``(i, j)`` (pixels) of a 2-D body mask."""
    where = np.argwhere(body)
    low, high = where.min(axis=0), where.max(axis=0)
    return (low + high) / 2.0, (high - low) / 2.0


def hip_metal(base: Study, dark_hu: float = -250.0) -> Study:
    """Two hip prostheses (elongated, 3071 HU) and the dark beam-hardening band between them.

    Each slice gets two ellipses (40 x 18 mm) at a third of the body's width either side of
    its centre; the band joining them (20 mm wide) is darkened by ``dark_hu`` inside the body,
    with bright streaks (+400 HU) fanning from each implant's ends.
    """
    from ctpipe.body_mask import body_mask

    hu = base.hu.copy()
    pixel = base.spacing[0]
    body = body_mask(hu)
    ii, jj = np.mgrid[: hu.shape[0], : hu.shape[1]].astype(np.float64)
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        (ci, cj), (hi, _) = _body_extent(body[:, :, k])
        left, right = ci - hi * 0.45, ci + hi * 0.45
        # the band between the implants, fading along its width
        across = np.abs(jj - cj) * pixel
        between = (ii > left) & (ii < right)
        band = dark_hu * np.exp(-((across / 10.0) ** 2)) * between
        angle = np.arctan2(jj - cj, ii - ci)
        streak = 400.0 * np.exp(
            -((np.sin(3 * angle) * np.hypot(ii - ci, jj - cj) * pixel / 4) ** 2)
        )
        hu[:, :, k] += ((band + 0.3 * streak) * body[:, :, k]).astype(np.float32)
        for centre in (left, right):
            implant = ((ii - centre) * pixel / 9.0) ** 2 + ((jj - cj) * pixel / 20.0) ** 2 <= 1
            hu[:, :, k][implant] = 3071.0
    return Study(f"{base.name}: hip prostheses and beam hardening", hu, base.spacing)


def dental_metal(base: Study, seed: int = 0) -> Study:
    """A row of dental-filling-like metal pieces (small squares, 3071 HU) along an arc with streaks.

    Eight 4 mm squares along an arc at the body's front; each adds streaks of ±500 HU along
    the lines joining it to the others.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.copy()
    pixel = base.spacing[0]
    body = body_mask(hu)
    ii, jj = np.mgrid[: hu.shape[0], : hu.shape[1]].astype(np.float64)
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        (ci, cj), (hi, hj) = _body_extent(body[:, :, k])
        angles = np.linspace(-0.9, 0.9, 8) + rng.uniform(-0.05, 0.05, 8)
        points = [(ci + 0.5 * hi * np.sin(a), cj - 0.6 * hj * np.cos(a)) for a in angles]
        streak = np.zeros_like(ii)
        for n, (pi, pj) in enumerate(points[:-1]):
            qi, qj = points[n + 1]
            direction = np.array([qi - pi, qj - pj]) / max(np.hypot(qi - pi, qj - pj), 1e-6)
            across = np.abs((ii - pi) * direction[1] - (jj - pj) * direction[0]) * pixel
            streak += (-1) ** n * 500.0 * np.exp(-((across / 1.5) ** 2))
        hu[:, :, k] += (streak * body[:, :, k]).astype(np.float32)
        half = 2.0 / pixel
        for pi, pj in points:
            hu[:, :, k][(np.abs(ii - pi) <= half) & (np.abs(jj - pj) <= half)] = 3071.0
    return Study(f"{base.name}: dental-like metal", hu, base.spacing)


def motion_doubling(base: Study, shift_mm: float = 12.0) -> Study:
    """Motion during the scan: each slice the mean of itself and a copy moved ``shift_mm`` (AP)."""
    from scipy.ndimage import shift as shift_image

    pixel = base.spacing[1]
    moved = shift_image(base.hu, (0.0, shift_mm / pixel, 0.0), order=1, mode="nearest")
    hu = (0.5 * (base.hu + moved)).astype(np.float32)
    return Study(f"{base.name}: motion doubling {shift_mm:g} mm", hu, base.spacing)


def truncated_fov(base: Study, fraction: float = 0.7, rim_hu: float = 400.0) -> Study:
    """Truncation: a circular field of view smaller than the body, a bright rim at its edge.

    Outside a circle of radius ``fraction`` of the body's half-width (centred on the body)
    the image is the padding value; inside, within 15 mm of the edge, the body brightens
    by up to ``rim_hu`` (the classic truncation artifact).
    """
    from ctpipe.body_mask import body_mask

    hu = base.hu.copy()
    pixel = base.spacing[0]
    body = body_mask(hu)
    ii, jj = np.mgrid[: hu.shape[0], : hu.shape[1]].astype(np.float64)
    pad = float(min(hu.min(), -1024.0))
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        (ci, cj), (hi, _) = _body_extent(body[:, :, k])
        radius = fraction * hi * pixel
        r = np.hypot(ii - ci, jj - cj) * pixel
        rim = rim_hu * np.exp(-np.clip(radius - r, 0, None) / 15.0 * 3.0)
        hu[:, :, k] += (rim * body[:, :, k] * (r <= radius)).astype(np.float32)
        hu[:, :, k][r > radius] = pad
    return Study(f"{base.name}: truncated field of view", hu, base.spacing)


def angiography(base: Study, seed: int = 0, vessel_hu: float = 450.0) -> Study:
    """An angiography-like arterial phase: bright round vessels (450 HU), organs unenhanced.

    An aorta (25 mm) in front of the body's centre and six smaller arteries (6-10 mm) at
    random body positions, each at ``vessel_hu`` with noise.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.copy()
    pixel = base.spacing[0]
    body = body_mask(hu)
    ii, jj = np.mgrid[: hu.shape[0], : hu.shape[1]].astype(np.float64)
    for k in range(hu.shape[2]):
        inside = np.argwhere(body[:, :, k])
        if inside.size == 0:
            continue
        (ci, cj), (_, hj) = _body_extent(body[:, :, k])
        vessels = [(ci, cj + 0.25 * hj, 12.5)]
        for _ in range(6):
            pi, pj = inside[rng.integers(len(inside))]
            vessels.append((pi, pj, rng.uniform(3.0, 5.0)))
        for vi, vj, radius in vessels:
            disc = np.hypot(ii - vi, jj - vj) * pixel <= radius
            hu[:, :, k][disc] = vessel_hu + rng.normal(0, 15.0, int(disc.sum()))
    return Study(f"{base.name}: angiography-like arterial phase", hu, base.spacing)


def burned_mask(base: Study, value: float | None = None) -> Study:
    """A black mask burned into the image: a rectangle over a third of the body set to ``value``.

    ``value`` defaults to the image's minimum (what an anonymiser paints).
    """
    from ctpipe.body_mask import body_mask

    hu = base.hu.copy()
    fill = float(hu.min()) if value is None else value
    body = body_mask(hu)
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        (ci, cj), (hi, hj) = _body_extent(body[:, :, k])
        i0, i1 = int(ci - 0.2 * hi), int(ci + 0.6 * hi)
        j0, j1 = int(cj - 0.5 * hj), int(cj + 0.3 * hj)
        hu[max(i0, 0) : i1, max(j0, 0) : j1, k] = fill
    return Study(f"{base.name}: black mask burned in", hu, base.spacing)


def thick_slab(base: Study, slab_mm: float = 10.0) -> Study:
    """A 10 mm average (thick slab): each slice the mean over ``slab_mm`` around it."""
    from scipy.ndimage import uniform_filter1d

    size = max(1, round(slab_mm / base.spacing[2]))
    hu = uniform_filter1d(base.hu, size=size, axis=2, mode="nearest").astype(np.float32)
    return Study(f"{base.name}: {slab_mm:g} mm average slab", hu, base.spacing)


def half_body(base: Study) -> Study:
    """Real anatomy cropped differently: the body cut at its midline, one side replaced by air."""
    from ctpipe.body_mask import body_mask

    hu = base.hu.copy()
    body = body_mask(hu)
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        (ci, _), _ = _body_extent(body[:, :, k])
        hu[: int(ci), :, k] = -1000.0
    return Study(f"{base.name}: one half of the body", hu, base.spacing)


def head_in_body_fov(filename: str, pixel_mm: float = 0.8, seed: int = 0) -> Study:
    """A real head CT from pydicom resampled into a 410 mm body field of view, 4 slices.

    The image is zoomed to ``pixel_mm`` pixels, placed in the centre of a 512 x 512 air
    matrix, and repeated on 4 slices with 5 HU of independent noise each.
    """
    from scipy.ndimage import zoom

    source = pydicom_image(filename)
    image = source.hu[:, :, 0]
    small = zoom(image, source.spacing[0] / pixel_mm, order=1)
    out = np.full((512, 512), -1000.0, np.float32)
    si, sj = min(small.shape[0], 512), min(small.shape[1], 512)
    oi, oj = (512 - si) // 2, (512 - sj) // 2
    out[oi : oi + si, oj : oj + sj] = np.maximum(small[:si, :sj], -1000.0)
    rng = np.random.default_rng(seed)
    volume = np.stack([out + rng.normal(0, 5.0, out.shape) for _ in range(4)], axis=2)
    name = f"{filename} (pydicom head CT) in a {512 * pixel_mm:.0f} mm field of view"
    return Study(name, volume.astype(np.float32), (pixel_mm, pixel_mm, 5.0))


def resized_body(base: Study, scale: float) -> Study:
    """Normal variant: an adult body scaled by ``scale`` (e.g. 0.85, 1.15) about its centre.

    Parts that leave the field of view are cut, as a scanner's field of view would.
    """
    hu = np.maximum(base.hu, -1024.0)
    centre = np.asarray(_body_centre(hu))
    matrix = np.eye(2) / scale
    resized = _affine_slices(hu, matrix, centre - matrix @ centre, -1000.0, hu.shape[:2])
    return Study(f"{base.name}: body scaled x{scale:g}", resized, base.spacing)


def shifted(base: Study, shift_mm: tuple[float, float] = (-40.0, 30.0)) -> Study:
    """Normal variant: the patient off centre by ``shift_mm``, not turned."""
    return off_centre(base, shift_mm, 0.0)


# Fourth family (``bench_ood_guard.py --fresh2``): kinds that none of the three earlier
# families holds, fixed before the guard's third version was designed and scored once with
# it; and normal variants of a kind not used before.


def photon_starvation(base: Study, seed: int = 0, lines: int = 24) -> Study:
    """Photon starvation: streaks of noise along the body's widest (lateral, ``i``) path.

    Too few photons cross the shoulders or the pelvis side to side; filtered back projection
    turns that into dark and bright streaks along the lateral direction. ``lines`` streaks
    through the body, within ±14° of the ``i`` axis and within the middle 80 % of its height,
    0.8-2 mm wide, with amplitudes drawn from N(0, 180 HU), inside the body only.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.copy()
    pixel = base.spacing[0]
    body = body_mask(hu)
    ii, jj = np.mgrid[: hu.shape[0], : hu.shape[1]].astype(np.float64)
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        (ci, cj), (_, hj) = _body_extent(body[:, :, k])
        streak = np.zeros_like(ii)
        for _ in range(lines):
            theta = rng.uniform(-0.25, 0.25)
            offset = cj + rng.uniform(-0.8, 0.8) * hj
            across = np.abs((jj - offset) * np.cos(theta) - (ii - ci) * np.sin(theta)) * pixel
            width = rng.uniform(0.8, 2.0)
            streak += rng.normal(0.0, 180.0) * np.exp(-((across / width) ** 2))
        hu[:, :, k] += (streak * body[:, :, k]).astype(np.float32)
    return Study(f"{base.name}: photon starvation streaks", hu, base.spacing)


def detector_rings(
    base: Study, radii_mm: tuple[float, ...] = (35.0, 80.0, 140.0), ring_hu: float = 220.0
) -> Study:
    """A detector fault: a few strong rings about the image centre (the rotation axis).

    Each ring is 1.5 mm wide (Gaussian profile), alternately ``+ring_hu`` and ``-ring_hu``,
    the same on every slice, added inside the body only; no cupping.
    """
    from ctpipe.body_mask import body_mask

    x, y = _grid(base.hu.shape[:2], base.spacing[0])
    iso = np.hypot(x, y)
    ring = sum(
        (-1) ** n * ring_hu * np.exp(-(((iso - r) / 1.5) ** 2)) for n, r in enumerate(radii_mm)
    )
    hu = base.hu + (ring[:, :, None] * body_mask(base.hu)).astype(np.float32)
    return Study(f"{base.name}: detector-fault rings ±{ring_hu:g} HU", hu, base.spacing)


def oral_contrast(base: Study, seed: int = 0, loops: int = 6, contrast_hu: float = 700.0) -> Study:
    """Positive oral contrast: bowel-like loops of dense contrast (``contrast_hu``) in soft tissue.

    Each slice gets ``loops`` tubes 14-22 mm wide along random walks (8 steps of 10 mm)
    that start at random soft-tissue pixels; they fill only body pixels whose HU (smoothed
    over 2 mm) are soft tissue (-150 to 150), and the contrast is mottled (N(0, 80 HU)).
    """
    from scipy.ndimage import gaussian_filter

    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.copy()
    pixel = base.spacing[0]
    body = body_mask(hu)
    smooth = gaussian_filter(hu, (2.0 / pixel, 2.0 / pixel, 0))
    x, y = _grid(hu.shape[:2], pixel)
    for k in range(hu.shape[2]):
        soft = body[:, :, k] & (smooth[:, :, k] > -150) & (smooth[:, :, k] < 150)
        starts = np.argwhere(soft)
        if starts.size == 0:
            continue
        filled = np.zeros(soft.shape, bool)
        for _ in range(loops):
            si, sj = starts[rng.integers(len(starts))]
            px, py = x[si, sj], y[si, sj]
            radius = rng.uniform(7.0, 11.0)
            heading = rng.uniform(0, 2 * np.pi)
            for _ in range(8):
                filled |= (x - px) ** 2 + (y - py) ** 2 <= radius**2
                heading += rng.normal(0.0, 0.8)
                px, py = px + 10.0 * np.cos(heading), py + 10.0 * np.sin(heading)
        filled &= soft
        hu[:, :, k][filled] = contrast_hu + rng.normal(0.0, 80.0, int(filled.sum()))
    return Study(f"{base.name}: oral contrast in bowel loops", hu, base.spacing)


def sharp_kernel(base: Study, boost: float = 2.0, noise_hu: float = 90.0, seed: int = 0) -> Study:
    """A very sharp (bone or lung) reconstruction kernel: edges overshoot, noise is fine-grained.

    The image gains ``boost`` times its detail above a 0.6 mm Gaussian (unsharp masking),
    and white (uncorrelated, pixel-to-pixel) noise of ``noise_hu`` is added wherever the
    image is not padding.
    """
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    sigma = 0.6 / base.spacing[0]
    hu = np.maximum(base.hu.astype(np.float64), -1024.0)  # padding is not reconstructed
    sharp = hu + boost * (hu - gaussian_filter(hu, (sigma, sigma, 0)))
    sharp += rng.normal(0.0, noise_hu, hu.shape) * (hu > -1024)
    sharp = np.where(base.hu < -1024, base.hu, sharp)
    return Study(f"{base.name}: sharp bone kernel", sharp.astype(np.float32), base.spacing)


def couch_only(base: Study, seed: int = 0) -> Study:
    """Slices past the patient's end: the couch alone in air (the base gives matrix and pixels).

    The couch is a shallow arc 450 mm wide, 40 mm thick (a 2 mm shell at 150 HU around a
    foam core at -850 HU) with a 30 mm mattress (-120 HU) on top, centred at the image's
    width, below where the base's body ends; 10 HU of noise.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    pixel = base.spacing[0]
    x, y = _grid(base.hu.shape[:2], pixel)
    body = body_mask(base.hu)
    rows = np.flatnonzero(body.any(axis=(0, 2)))
    bottom = (y[0, rows[-1]] if rows.size else y.max() * 0.6) + 5.0
    top = np.minimum(bottom + 30.0 - 0.0006 * x**2, y.max() - 45.0)  # a cradle: edges higher
    inside = np.abs(x) <= 225.0
    depth = y - top
    slice_hu = np.full(x.shape, -1000.0)
    slice_hu[inside & (depth >= -30.0) & (depth < 0.0)] = -120.0  # mattress
    slice_hu[inside & (depth >= 0.0) & (depth < 40.0)] = -850.0  # foam core
    shell = inside & (((depth >= 0.0) & (depth < 2.0)) | ((depth >= 38.0) & (depth < 40.0)))
    slice_hu[shell] = 150.0
    hu = np.repeat(slice_hu[:, :, None], base.hu.shape[2], axis=2)
    hu += rng.normal(0.0, 10.0, hu.shape)
    return Study(f"{base.name} geometry: couch only", hu.astype(np.float32), base.spacing)


def pixel_representation_wrap(base: Study) -> Study:
    """Signed stored values read as unsigned: every negative HU wrapped to ``hu + 65536``.

    What a reader does when a file stores HU as signed 16-bit values (intercept 0) but
    declares ``PixelRepresentation`` 0 (pydicom's ``J2K_pixelrep_mismatch.dcm`` is such a
    case): air becomes 64,536, fat about 65,440.
    """
    hu = np.where(base.hu < 0, base.hu + 65536.0, base.hu).astype(np.float32)
    return Study(f"{base.name}: signed values read as unsigned", hu, base.spacing)


def zeroed_rows(base: Study, seed: int = 0, stripes: int = 3) -> Study:
    """Detector or transfer dropout: stripes of rows stored as 0, i.e. -1024 HU, across the image.

    ``stripes`` bands 6-12 mm tall, at random heights through the body (the same on every
    slice), span the whole width of the image.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.copy()
    pixel = base.spacing[1]
    rows = np.flatnonzero(body_mask(hu).any(axis=(0, 2)))
    low, high = (rows[0], rows[-1]) if rows.size else (0, hu.shape[1] - 1)
    for _ in range(stripes):
        height = max(1, round(rng.uniform(6.0, 12.0) / pixel))
        start = int(rng.integers(low, max(low + 1, high - height)))
        hu[:, start : start + height, :] = -1024.0
    return Study(f"{base.name}: zeroed row stripes", hu, base.spacing)


def contrast_tube(base: Study, seed: int = 0, tube_hu: float = 1800.0) -> Study:
    """A drain, stent or duct filled with dense contrast (ERCP-, nephrostomy- or myelogram-like).

    A curved tube 8 mm across (a quadratic Bézier curve between two body pixels, bending
    through a third) is painted at ``tube_hu`` with N(0, 60 HU) inside the body.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.copy()
    pixel = base.spacing[0]
    body = body_mask(hu)
    x, y = _grid(hu.shape[:2], pixel)
    for k in range(hu.shape[2]):
        inside = np.argwhere(body[:, :, k])
        if inside.size == 0:
            continue
        ends = [inside[rng.integers(len(inside))] for _ in range(3)]
        points = np.array([(x[i, j], y[i, j]) for i, j in ends])
        tube = np.zeros(x.shape, bool)
        for t in np.linspace(0.0, 1.0, 60):
            px, py = (1 - t) ** 2 * points[0] + 2 * t * (1 - t) * points[2] + t**2 * points[1]
            tube |= (x - px) ** 2 + (y - py) ** 2 <= 16.0
        tube &= body[:, :, k]
        hu[:, :, k][tube] = tube_hu + rng.normal(0.0, 60.0, int(tube.sum()))
    return Study(f"{base.name}: contrast-filled tube", hu, base.spacing)


def attenuation_ct(base: Study, pixel_mm: float = 4.0, noise_hu: float = 30.0) -> Study:
    """A PET-CT attenuation-correction CT: low dose, reconstructed on 4 mm pixels, smoothed.

    The base is smoothed (Gaussian, half the new pixel), resampled to ``pixel_mm`` pixels,
    and given ``noise_hu`` of white noise at that resolution inside the body.
    """
    from scipy.ndimage import gaussian_filter, zoom

    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(0)
    sigma = pixel_mm / 2 / base.spacing[0]
    hu = np.maximum(base.hu.astype(np.float64), -1024.0)  # scanner padding becomes air
    smooth = gaussian_filter(hu, (sigma, sigma, 0))
    factor = base.spacing[0] / pixel_mm
    small = zoom(smooth, (factor, factor, 1.0), order=1)
    small += rng.normal(0.0, noise_hu, small.shape) * body_mask(small)
    spacing = (pixel_mm, pixel_mm, base.spacing[2])
    return Study(
        f"{base.name}: PET-CT attenuation CT at {pixel_mm:g} mm", small.astype(np.float32), spacing
    )


def monoenergetic_40kev(base: Study) -> Study:
    """A dual-energy virtual monoenergetic image at 40 keV read as the usual 120 kVp CT.

    HU are remapped piecewise linearly through (-1000, -1000), (-200, -280), (0, 0) and
    doubled above 0: fat darker, soft tissue, contrast and bone twice as bright.
    """
    mapped = _energy_remap(base.hu.astype(np.float64), 2.0, -280.0)
    return Study(f"{base.name}: 40 keV monoenergetic", mapped.astype(np.float32), base.spacing)


def _energy_remap(hu: np.ndarray, scale_above_0: float, hu_at_minus_200: float) -> np.ndarray:
    """HU of another beam energy: ``scale_above_0`` times above 0, piecewise linear below.

    Through (-1000, -1000), (-200, ``hu_at_minus_200``) and (0, 0); values below -1000
    (padding) are kept.
    """
    mapped = np.where(
        hu > 0,
        scale_above_0 * hu,
        np.interp(hu, [-1000.0, -200.0, 0.0], [-1000.0, hu_at_minus_200, 0.0]),
    )
    return np.where(hu < -1000, hu, mapped)


def localizer(base: Study, seed: int = 0) -> Study:
    """A localizer (scout) mislabelled as an axial slice: the base projected front to back.

    Line integrals of ``mu = 0.019 / mm * (HU + 1000) / 1000`` along ``j`` give one image
    ``(i, k)``, resampled along ``k`` to the in-plane pixel size and mapped to
    ``3000 * p / max(p) - 1024``; 2 slices with 8 HU of independent noise each.
    """
    from scipy.ndimage import zoom

    rng = np.random.default_rng(seed)
    mu = 0.019 * np.clip(base.hu.astype(np.float64) + 1000.0, 0.0, None) / 1000.0
    projection = mu.sum(axis=1) * base.spacing[1]  # (i, k)
    projection = zoom(projection, (1.0, base.spacing[2] / base.spacing[0]), order=1)
    image = 3000.0 * projection / max(projection.max(), 1e-6) - 1024.0
    volume = np.stack([image + rng.normal(0.0, 8.0, image.shape) for _ in range(2)], axis=2)
    spacing = (base.spacing[0], base.spacing[0], 5.0)
    return Study(f"{base.name}: localizer as an axial slice", volume.astype(np.float32), spacing)


def mirrored(base: Study) -> Study:
    """Normal variant: left and right swapped (an image flipped along ``i``)."""
    return Study(f"{base.name}: left-right mirrored", base.hu[::-1].copy(), base.spacing)


def soft_kernel(base: Study, sigma_mm: float = 0.5) -> Study:
    """Normal variant: a smoother soft-tissue kernel (a Gaussian of ``sigma_mm`` in plane)."""
    from scipy.ndimage import gaussian_filter

    sigma = sigma_mm / base.spacing[0]
    hu = gaussian_filter(base.hu, (sigma, sigma, 0)).astype(np.float32)
    return Study(f"{base.name}: smoother kernel ({sigma_mm:g} mm)", hu, base.spacing)


def calibration_drift(base: Study, offset_hu: float = 15.0) -> Study:
    """Normal variant: a scanner's water calibration off by ``offset_hu`` (air kept)."""
    hu = np.where(base.hu > -1000, base.hu + offset_hu, base.hu).astype(np.float32)
    return Study(f"{base.name}: calibration {offset_hu:+g} HU", hu, base.spacing)


def circle_padding(base: Study, padding_hu: float = -3024.0) -> Study:
    """Normal variant: air outside the scanner's reconstruction circle stored as ``padding_hu``.

    The circle is the largest one about the image centre; body pixels outside it are kept.
    """
    from ctpipe.body_mask import body_mask

    x, y = _grid(base.hu.shape[:2], 1.0)
    outside = np.hypot(x, y) > (min(base.hu.shape[:2]) - 1) / 2
    air = (base.hu <= -900) & ~body_mask(base.hu)
    hu = np.where(outside[:, :, None] & air, padding_hu, base.hu).astype(np.float32)
    return Study(f"{base.name}: {padding_hu:g} outside the scan circle", hu, base.spacing)


def wider_fov(base: Study, factor: float = 1.15) -> Study:
    """Normal variant: a field of view ``factor`` times wider on the same matrix (larger pixels)."""
    hu = np.maximum(base.hu, -1024.0)
    centre = (np.asarray(hu.shape[:2]) - 1) / 2
    matrix = np.eye(2) * factor
    wide = _affine_slices(hu, matrix, centre - matrix @ centre, -1000.0, hu.shape[:2])
    spacing = (base.spacing[0] * factor, base.spacing[1] * factor, base.spacing[2])
    return Study(f"{base.name}: field of view x{factor:g}", wide, spacing)


# Fifth family (``bench_ood_guard.py --fresh3``): kinds that none of the four earlier
# families holds, fixed before the guard's fourth version was designed and scored once with
# it; and normal variants of a kind not used before.


def qa_phantom(base: Study, seed: int = 0, slices: int = 8) -> Study:
    """A quality-assurance phantom on the base's matrix and pixels: a water cylinder with rods.

    A 200 mm water cylinder (0 HU) in a 3 mm acrylic shell (120 HU), centred in the image,
    holds six rods 20 mm across, 60 mm from its axis: air (-1000), LDPE (-100),
    polystyrene (-35), acrylic (120), Delrin (340) and Teflon (950 HU); 12 HU of correlated
    noise; ``slices`` slices.
    """
    rng = np.random.default_rng(seed)
    x, y = _grid(base.hu.shape[:2], base.spacing[0])
    image = np.full(x.shape, -1000.0)
    image[_ellipse(x, y, 0, 0, 103, 103)] = 120.0
    image[_ellipse(x, y, 0, 0, 100, 100)] = 0.0
    for n, value in enumerate((-1000.0, -100.0, -35.0, 120.0, 340.0, 950.0)):
        angle = 2 * np.pi * n / 6
        image[_ellipse(x, y, 60 * np.cos(angle), 60 * np.sin(angle), 10, 10)] = value
    count = min(slices, base.hu.shape[2])
    hu = np.repeat(image[:, :, None], count, axis=2)
    inside = np.repeat(_ellipse(x, y, 0, 0, 103, 103)[:, :, None], count, axis=2)
    hu += _noise(rng, hu.shape, 12.0) * inside
    return Study(
        f"{base.name} geometry: QA water phantom with rods", hu.astype(np.float32), base.spacing
    )


#: Lines of burned-in annotation: (text, corner) with corners top-left, top-right, bottom-left,
#: bottom-right (in the image as displayed: ``i`` across, ``j`` down).
_ANNOTATIONS = (
    ("CT ABDOMEN C+", "tl"),
    ("SE 3  IM 25", "tl"),
    ("2026-12-06 10:42", "tl"),
    ("W 400  L 40", "tr"),
    ("120 kV  210 mAs", "bl"),
    ("3.0 mm  B30f", "br"),
)


def annotation_text(base: Study, value: float = 3071.0, text_mm: float = 5.0) -> Study:
    """Burned-in annotations, as on a workstation's key image saved back as CT.

    Text lines about ``text_mm`` tall in the four corners (series, date, window, kV,
    kernel), a 1-pixel caliper line across the middle of the body with its length written
    beside it, and an elliptic ROI outline with its mean, all drawn at ``value`` (the top
    of the 12-bit range) over the image (Pillow's default font, binarised).
    """
    from PIL import Image, ImageDraw, ImageFont

    from ctpipe.body_mask import body_mask

    hu = base.hu.copy()
    pixel = base.spacing[0]
    size = max(8, round(text_mm / pixel))
    font = ImageFont.load_default(size=size)
    width, height = hu.shape[:2]
    body = body_mask(hu)
    for k in range(hu.shape[2]):
        canvas = Image.new("L", (width, height))
        draw = ImageDraw.Draw(canvas)
        rows = {"tl": 0, "tr": 0, "bl": 0, "br": 0}
        for text, corner in _ANNOTATIONS:
            left, _, right, _ = draw.textbbox((0, 0), text, font=font)
            tx = 2 if corner[1] == "l" else width - (right - left) - 2
            line = rows[corner]
            ty = 2 + line * (size + 2) if corner[0] == "t" else height - (line + 1) * (size + 2)
            rows[corner] += 1
            draw.text((tx, ty), text, fill=255, font=font)
        if body[:, :, k].any():
            (ci, cj), (hi, hj) = _body_extent(body[:, :, k])
            a, b = (ci - 0.4 * hi, cj), (ci + 0.1 * hi, cj)
            draw.line([a, b], fill=255, width=1)
            length = (b[0] - a[0]) * pixel
            draw.text((a[0], cj - size - 3), f"{length:.1f} mm", fill=255, font=font)
            box = (ci + 0.2 * hi, cj + 0.1 * hj, ci + 0.45 * hi, cj + 0.3 * hj)
            draw.ellipse(box, outline=255, width=1)
            draw.text((box[0], box[3] + 2), "ROI 1: 52 HU", fill=255, font=font)
        mask = np.asarray(canvas).T > 127
        hu[:, :, k][mask] = value
    return Study(f"{base.name}: burned-in annotations", hu, base.spacing)


def iodine_map(base: Study, seed: int = 0) -> Study:
    """A dual-energy iodine map (material density, 0.1 mg/mL units) read as CT.

    Iodine is ``(HU - 45) / 25`` mg/mL of the base smoothed over 1 mm, at least 0 (enhanced
    tissue and vessels; 25 HU per mg/mL), halved where the base is above 300 HU (bone is
    partly assigned to iodine), with 0.4 mg/mL of white noise wherever the base is not
    padding; air, fat and water are near 0.
    """
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    sigma = 1.0 / base.spacing[0]
    smooth = gaussian_filter(base.hu.astype(np.float64), (sigma, sigma, 0))
    iodine = np.clip((smooth - 45.0) / 25.0, 0.0, None) * np.where(smooth > 300.0, 0.5, 1.0)
    iodine += rng.normal(0.0, 0.4, iodine.shape) * (base.hu > -1024)
    values = np.round(10.0 * iodine).astype(np.float32)
    return Study(f"{base.name}: dual-energy iodine map (0.1 mg/mL)", values, base.spacing)


def _spine(smooth: np.ndarray, body: np.ndarray) -> tuple[float, float] | None:
    """Centroid ``(i, j)`` of the vertebra in a slice (``None`` if no bone near the midline).

    The vertebra is the largest connected region of body pixels above 200 HU (``smooth``:
    HU smoothed over about 1 mm) whose centroid lies within a fifth of the body's
    half-width of its centre across (``i``). Front and back are not assumed: images stored
    in other orientations put the spine at either end of ``j``.
    """
    from scipy.ndimage import label

    (ci, _), (hi, _) = _body_extent(body)
    labels, count = label(body & (smooth > 200))
    best, best_size = None, 0
    for n in range(1, count + 1):
        where = np.argwhere(labels == n)
        centroid = where.mean(axis=0)
        if abs(centroid[0] - ci) < 0.2 * hi and len(where) > best_size:
            best, best_size = (float(centroid[0]), float(centroid[1])), len(where)
    return best


def _spine_at_low_j(hu: np.ndarray, body: np.ndarray, pixel_mm: float) -> bool:
    """Whether most slices' vertebra (:func:`_spine`) lies at lower ``j`` than the body's centre.

    Then the back of the body is at low ``j`` and its front at high ``j`` (``hu`` and
    ``body``: ``(i, j, k)``; ``pixel_mm``: the pixel size used to smooth over about 1 mm).
    """
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(hu.astype(np.float64), (1.0 / pixel_mm, 1.0 / pixel_mm, 0))
    spines = [_spine(smooth[:, :, k], body[:, :, k]) for k in range(body.shape[2])]
    centre_j = [
        _body_extent(body[:, :, k])[0][1] for k in range(body.shape[2]) if body[:, :, k].any()
    ]
    votes = [s[1] < c for s, c in zip(spines, centre_j, strict=False) if s is not None]
    return bool(votes) and np.mean(votes) > 0.5


def _middle_columns(body: np.ndarray, share: float = 0.3) -> np.ndarray:
    """Columns ``i`` of a 2-D body mask within ``share`` half-widths of its centre that hold body.

    That is the middle ``share`` of the body's width (30 % by default).
    """
    (ci, _), (hi, _) = _body_extent(body)
    columns = np.arange(int(ci - share * hi), int(ci + share * hi) + 1)
    return columns[body[columns].any(axis=1)]


def myelogram(base: Study, contrast_hu: float = 800.0, seed: int = 0) -> Study:
    """A CT myelogram: dense intrathecal contrast around the spinal cord.

    The spinal canal is taken at the vertebra's centroid (:func:`_spine`; the body's
    centre where none is found); an annulus 2.5-6.5 mm from it becomes ``contrast_hu``
    with N(0, 40 HU), where the base is not bone (below 200 HU); the cord inside stays.
    """
    from scipy.ndimage import gaussian_filter

    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.copy()
    pixel = base.spacing[0]
    body = body_mask(hu)
    smooth = gaussian_filter(hu.astype(np.float64), (1.0 / pixel, 1.0 / pixel, 0))
    ii, jj = np.mgrid[: hu.shape[0], : hu.shape[1]].astype(np.float64)
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        spine = _spine(smooth[:, :, k], body[:, :, k])
        si, sj = spine if spine is not None else _body_extent(body[:, :, k])[0]
        r = np.hypot(ii - si, jj - sj) * pixel
        sac = (r >= 2.5) & (r <= 6.5) & (hu[:, :, k] < 200)
        hu[:, :, k][sac] = contrast_hu + rng.normal(0.0, 40.0, int(sac.sum()))
    return Study(f"{base.name}: CT myelogram", hu, base.spacing)


def prone(base: Study) -> Study:
    """A prone scan shown in the supine frame: each body turned upside down (front to back).

    Each slice's body is flipped along ``j`` about its bounding box's centre; what lies
    outside the flipped body (air, couch) becomes -1000 HU.
    """
    from ctpipe.body_mask import body_mask

    body = body_mask(base.hu)
    hu = np.full_like(base.hu, -1000.0)
    for k in range(hu.shape[2]):
        rows = np.flatnonzero(body[:, :, k].any(axis=0))
        if rows.size == 0:
            continue
        low, high = rows[0], rows[-1]
        flipped = base.hu[:, low : high + 1, k][:, ::-1]
        inside = body[:, low : high + 1, k][:, ::-1]
        hu[:, low : high + 1, k] = np.where(inside, flipped, -1000.0)
    return Study(f"{base.name}: prone (front to back)", hu, base.spacing)


def minip_slab(base: Study, slab_mm: float = 10.0) -> Study:
    """A thick-slab minimum intensity projection (airways): each slice the minimum over a slab.

    The slab holds the slices within ``slab_mm / 2`` of the slice (at least its neighbours).
    """
    from scipy.ndimage import minimum_filter1d

    half = max(1, round(slab_mm / base.spacing[2] / 2))
    minip = minimum_filter1d(base.hu, size=2 * half + 1, axis=2, mode="nearest")
    thick = (2 * half + 1) * base.spacing[2]
    return Study(f"{base.name}: {thick:g} mm slab MinIP", minip.astype(np.float32), base.spacing)


def bone_removed(base: Study, fill_hu: float = -1024.0) -> Study:
    """A CT angiogram's bone removal: bones cut out and set to ``fill_hu``.

    Bone is every connected region of body pixels above 200 HU (smoothed over 1 mm) that
    holds a pixel above 600 HU (cortex), grown by 1.5 mm.
    """
    from scipy.ndimage import binary_dilation, distance_transform_edt, gaussian_filter, label

    from ctpipe.body_mask import body_mask

    hu = base.hu.copy()
    pixel = base.spacing[0]
    body = body_mask(hu)
    smooth = gaussian_filter(hu.astype(np.float64), (1.0 / pixel, 1.0 / pixel, 0))
    for k in range(hu.shape[2]):
        labels, count = label(body[:, :, k] & (smooth[:, :, k] > 200))
        if count == 0:
            continue
        dense = np.unique(labels[(hu[:, :, k] > 600) & (labels > 0)])
        bone = np.isin(labels, dense[dense > 0])
        if not bone.any():
            continue
        grown = distance_transform_edt(~bone, sampling=(pixel, pixel)) <= 1.5
        hu[:, :, k][binary_dilation(bone) | grown] = fill_hu
    return Study(f"{base.name}: bone removed (CTA)", hu, base.spacing)


def bismuth_shield(
    base: Study, gap_mm: float = 8.0, thickness_mm: float = 1.5, seed: int = 0
) -> Study:
    """A bismuth breast shield on a foam pad over the front of the body, and its shadow.

    Over the middle 30 % of the body's width, a layer ``thickness_mm`` thick at 2500 HU
    (N(0, 50 HU)) follows the front skin ``gap_mm`` above it; under it the body is darker by
    up to 80 HU (fading over 15 mm of depth) and noisier (20 HU of added correlated noise
    within 40 mm of the skin). The front is the side of ``j`` away from the spine
    (:func:`_spine`; low ``j`` where none is found).
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    pixel = base.spacing[1]
    body = body_mask(base.hu)
    flip = _spine_at_low_j(base.hu, body, pixel)  # then the front is at high j
    hu = base.hu[:, ::-1].copy() if flip else base.hu.copy()
    body = body[:, ::-1] if flip else body
    jj = np.arange(hu.shape[1], dtype=np.float64)[None, :]
    noise = _noise(rng, hu.shape, 20.0)
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        columns = _middle_columns(body[:, :, k])
        skin = np.argmax(body[columns, :, k], axis=1).astype(np.float64)[:, None]
        depth = (jj - skin) * pixel  # mm under the skin (negative: outside)
        shield = (depth <= -gap_mm) & (depth > -gap_mm - thickness_mm)
        shadow = body[columns, :, k] & (depth >= 0)
        change = np.where(shadow, -80.0 * np.exp(-depth / 15.0), 0.0)
        change += np.where(shadow & (depth < 40.0), noise[columns, :, k], 0.0)
        block = hu[columns, :, k] + change
        block[shield] = 2500.0 + rng.normal(0.0, 50.0, int(shield.sum()))
        hu[columns, :, k] = block.astype(np.float32)
    hu = np.ascontiguousarray(hu[:, ::-1]) if flip else hu
    return Study(f"{base.name}: bismuth breast shield", hu, base.spacing)


#: The JPEG standard's luminance quantisation table (ITU-T T.81, Annex K, quality 50).
_JPEG_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    np.float64,
)


def jpeg_blocks(base: Study, scale: float = 4.0) -> Study:
    """Strong lossy JPEG compression of the 12-bit stored values: 8 x 8 blocks, noise lost.

    Stored values ``HU + 1024`` (clipped to 0-4095) are cut into 8 x 8 blocks (the image
    padded by repeating its edge), each block's orthonormal DCT-II coefficients are rounded
    to multiples of ``scale`` times the JPEG luminance table, and the blocks transformed back.
    """
    from scipy.fft import dctn, idctn

    stored = np.clip(base.hu.astype(np.float64) + 1024.0, 0.0, 4095.0)
    n_i, n_j = (-stored.shape[0]) % 8, (-stored.shape[1]) % 8
    padded = np.pad(stored, ((0, n_i), (0, n_j), (0, 0)), mode="edge")
    bi, bj = padded.shape[0] // 8, padded.shape[1] // 8
    blocks = padded.reshape(bi, 8, bj, 8, -1)
    coefficients = dctn(blocks, axes=(1, 3), norm="ortho")
    step = scale * _JPEG_LUMINANCE[None, :, None, :, None]
    restored = idctn(np.round(coefficients / step) * step, axes=(1, 3), norm="ortho")
    out = restored.reshape(padded.shape)[: stored.shape[0], : stored.shape[1]] - 1024.0
    name = f"{base.name}: lossy JPEG (8 x 8 blocks, table x{scale:g})"
    return Study(name, out.astype(np.float32), base.spacing)


def spacing_missing(base: Study, assumed_mm: float = 1.0) -> Study:
    """A file without PixelSpacing, read with the usual default of ``assumed_mm`` per pixel."""
    spacing = (assumed_mm, assumed_mm, base.spacing[2])
    return Study(f"{base.name}: pixel spacing missing ({assumed_mm:g} mm)", base.hu, spacing)


def _own_noise(hu: np.ndarray, body: np.ndarray) -> float:
    """A volume's own noise (HU): the robust SD of soft-tissue pixels' residual to 4 neighbours.

    Soft tissue is body pixels of -100 to 200 HU; the residual of white noise of SD ``s``
    to the mean of the 4 neighbours has SD ``s * sqrt(1.25)`` (10 HU if there is no soft
    tissue).
    """
    neighbours = 0.25 * (
        np.roll(hu, 1, 0) + np.roll(hu, -1, 0) + np.roll(hu, 1, 1) + np.roll(hu, -1, 1)
    )
    soft = body & (hu > -100) & (hu < 200)
    residual = (hu - neighbours)[soft]
    return float(np.median(np.abs(residual)) / 0.6745 / np.sqrt(1.25)) if residual.size else 10.0


def reduced_dose(base: Study, dose: float = 0.6, seed: int = 0) -> Study:
    """Normal variant: the scan at ``dose`` of its dose: noise raised by ``sqrt(1 / dose)``.

    The base's own noise ``s`` is estimated in soft tissue (HU -100 to 200) from the
    residual to the mean of the 4 neighbours (``std / sqrt(1.25)`` for white noise), and
    correlated noise of ``s * sqrt(1 / dose - 1)`` is added inside the body.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.astype(np.float64)
    body = body_mask(base.hu)
    added = _own_noise(hu, body) * np.sqrt(1.0 / dose - 1.0)
    noisy = hu + _noise(rng, hu.shape, added) * body
    return Study(f"{base.name}: {dose:.0%} dose", noisy.astype(np.float32), base.spacing)


def finer_matrix(base: Study, factor: float = 1.5) -> Study:
    """Normal variant: the same field of view on a ``factor`` times finer matrix (512 -> 768)."""
    hu = np.maximum(base.hu, -1024.0)
    shape = (round(hu.shape[0] * factor), round(hu.shape[1] * factor))
    matrix = np.eye(2) / factor
    offset = (1.0 / factor - 1.0) / 2.0 * np.ones(2)  # pixel centres stay where they were
    fine = _affine_slices(hu, matrix, offset, -1000.0, shape)
    spacing = (base.spacing[0] / factor, base.spacing[1] / factor, base.spacing[2])
    return Study(f"{base.name}: {shape[0]} x {shape[1]} matrix", fine, spacing)


def sharper_kernel(base: Study, boost: float = 0.5) -> Study:
    """Normal variant: a slightly sharper soft-tissue kernel (unsharp masking, no added noise)."""
    sharp = sharp_kernel(base, boost=boost, noise_hu=0.0)
    return Study(f"{base.name}: slightly sharper kernel (x{boost:g})", sharp.hu, base.spacing)


# Sixth family (``bench_ood_guard.py --fresh4``): kinds that none of the five earlier
# families holds, fixed before the guard's fifth version was designed and scored once with
# it; and normal variants of a kind not used before.


def inverted_greyscale(base: Study) -> Study:
    """MONOCHROME1 stored values read as MONOCHROME2: the grey scale inverted.

    An image whose PhotometricInterpretation says that low values are white, read by a
    viewer or pipeline that ignores it: the 12-bit stored values ``HU + 1024`` (clipped to
    0-4095) become ``4095 - stored``, i.e. ``2047 - HU``: air at 3071, fat about 2150, soft
    tissue about 2000, bone 1000 and below.
    """
    hu = (2047.0 - np.clip(base.hu, -1024.0, 3071.0)).astype(np.float32)
    return Study(f"{base.name}: inverted grey scale (MONOCHROME1)", hu, base.spacing)


def byte_swapped(base: Study) -> Study:
    """Big-endian pixel data read as little-endian: the two bytes of each stored value swapped.

    Stored values ``HU + 1024`` (rounded, clipped to 0-4095, unsigned 16 bit) have their
    bytes swapped before the intercept of -1024 is applied: 40 HU (stored 1064, 0x0428)
    becomes 0x2804 - 1024 = 9220 HU, and the noise in the low byte moves values by
    multiples of 256.
    """
    stored = np.clip(np.round(base.hu.astype(np.float64)) + 1024.0, 0.0, 4095.0)
    swapped = stored.astype(np.uint16).byteswap().astype(np.float32) - 1024.0
    return Study(f"{base.name}: byte-swapped (big endian read as little)", swapped, base.spacing)


def subtraction(
    base: Study, enhancement_hu: float = 40.0, shift_mm: float = 0.8, seed: int = 0
) -> Study:
    """A subtraction series: a contrast-enhanced scan minus its unenhanced (mask) scan.

    The enhanced scan is the base with ``enhancement_hu`` added to tissue of 20-100 HU
    (smoothed over 2 mm; a soft edge of 1 mm); the mask scan is the base moved
    ``shift_mm`` front to back (breathing between the two scans), with noise of its own
    (correlated, as much as the base's, :func:`_own_noise`). Their difference is near 0 in
    air, fat and bone, ``enhancement_hu`` in enhancing tissue, and bright and dark where
    edges are misregistered.
    """
    from scipy.ndimage import gaussian_filter
    from scipy.ndimage import shift as shift_image

    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = np.maximum(base.hu.astype(np.float64), -1024.0)
    pixel = base.spacing[0]
    body = body_mask(base.hu)
    smooth = gaussian_filter(hu, (2.0 / pixel, 2.0 / pixel, 0))
    tissue = (body & (smooth >= 20.0) & (smooth <= 100.0)).astype(np.float64)
    weight = gaussian_filter(tissue, (1.0 / pixel, 1.0 / pixel, 0))
    mask_scan = shift_image(hu, (0.0, shift_mm / base.spacing[1], 0.0), order=1, mode="nearest")
    mask_scan += _noise(rng, hu.shape, _own_noise(hu, body)) * body
    difference = hu + enhancement_hu * weight - mask_scan
    return Study(f"{base.name}: subtraction series", difference.astype(np.float32), base.spacing)


def film_mosaic(base: Study, tiles: int = 3, gap_px: int = 2, sheets: int = 4) -> Study:
    """A film sheet saved as one image: ``tiles`` x ``tiles`` slices side by side, each shrunk.

    Image ``n`` of the result (``sheets`` at most) shows slices ``n, n + 1, ...`` of the
    base (cycling), each low-pass filtered and shrunk by ``1 / tiles`` into its cell of a
    grid on the base's matrix, with black gaps of ``gap_px`` pixels (-1024 HU) between the
    cells; the base's pixel spacing is kept (what a secondary capture copies from its
    source), so every body is ``tiles`` times too small and there are ``tiles²`` of them.
    """
    from scipy.ndimage import gaussian_filter, zoom

    hu = np.maximum(base.hu.astype(np.float64), -1024.0)
    size_i, size_j, count = hu.shape
    cell_i, cell_j = size_i // tiles, size_j // tiles
    inner_i, inner_j = cell_i - gap_px, cell_j - gap_px
    smooth = gaussian_filter(hu, ((tiles - 1) / 2, (tiles - 1) / 2, 0))
    out = np.full((size_i, size_j, min(sheets, count)), -1024.0)
    for n in range(out.shape[2]):
        for cell in range(tiles * tiles):
            source = smooth[:, :, (n + cell) % count]
            small = zoom(source, (inner_i / size_i, inner_j / size_j), order=1)[:inner_i, :inner_j]
            ti, tj = (cell % tiles) * cell_i, (cell // tiles) * cell_j
            out[ti : ti + small.shape[0], tj : tj + small.shape[1], n] = small
    name = f"{base.name}: film sheet of {tiles} x {tiles} slices"
    return Study(name, out.astype(np.float32), base.spacing)


#: Bulk densities of an MR-derived synthetic CT: (upper HU bound of the class, value).
_SYNTHETIC_CT_CLASSES = ((-850.0, -1000.0), (-400.0, -750.0), (-30.0, -95.0), (200.0, 35.0))


def synthetic_ct(base: Study, bone_hu: float = 700.0) -> Study:
    """An MR-derived synthetic CT (bulk densities, for MR-only radiotherapy planning) stored as CT.

    Each pixel of the base (HU smoothed over 1.5 mm, the MR's resolution) gets its tissue
    class's bulk value: air below -850 HU (-1000), lung to -400 (-750), fat to -30 (-95),
    soft tissue to 200 (35), bone above (``bone_hu``); class edges are softened over 1 mm.
    No noise and no texture: the classes are flat.
    """
    from scipy.ndimage import gaussian_filter

    pixel = base.spacing[0]
    smooth = gaussian_filter(base.hu.astype(np.float64), (1.5 / pixel, 1.5 / pixel, 0))
    values = np.full(smooth.shape, bone_hu)
    for bound, value in reversed(_SYNTHETIC_CT_CLASSES):
        values[smooth < bound] = value
    values = gaussian_filter(values, (1.0 / pixel, 1.0 / pixel, 0))
    return Study(f"{base.name}: MR-derived synthetic CT", values.astype(np.float32), base.spacing)


def label_map(base: Study) -> Study:
    """A tissue label map from the same folder read as the CT: integers 0-4 per pixel.

    0 outside the body; inside it, by the base's HU smoothed over 1 mm: 1 air and lung
    (below -400), 2 fat (-400 to -30), 3 soft tissue (-30 to 200), 4 bone (above 200).
    """
    from scipy.ndimage import gaussian_filter

    from ctpipe.body_mask import body_mask

    pixel = base.spacing[0]
    smooth = gaussian_filter(base.hu.astype(np.float64), (1.0 / pixel, 1.0 / pixel, 0))
    labels = 1 + np.searchsorted(np.array([-400.0, -30.0, 200.0]), smooth, side="right")
    labels = np.where(body_mask(base.hu), labels, 0)
    return Study(f"{base.name}: tissue label map", labels.astype(np.float32), base.spacing)


def dose_report(base: Study, seed: int = 0, pages: int = 2) -> Study:
    """A dose report screen capture (a secondary capture in the CT series) read as CT.

    ``pages`` images on the base's matrix, white text (up to 255, antialiased) on black
    (0), 8-bit values without rescale: a header (patient, date, total mAs and DLP) and a
    table of the series (scan type, range, CTDIvol, DLP, phantom), with numbers drawn from
    ``seed``.
    Screen captures carry no pixel spacing: it is read as 1 mm (the usual default).
    """
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    width, height = base.hu.shape[:2]
    size = max(8, round(width / 40))
    font = ImageFont.load_default(size=size)
    out = np.zeros((width, height, pages), np.float32)
    for page in range(pages):
        lines = [
            "Dose Report",
            f"Patient Name: ANONYMOUS    Page {page + 1} of {pages}",
            "Exam date: 06-Dec-2026",
            f"Total mAs {rng.integers(800, 6000)}    Total DLP {rng.uniform(100, 900):.1f} mGycm",
            "",
            "Series  Type       Scan range (mm)    CTDIvol  DLP     Phantom",
        ]
        for series in range(1 + 4 * page, 5 + 4 * page):
            start = rng.uniform(-400, 0)
            lines.append(
                f"{series:<7} {'Helical' if series % 3 else 'Topogram':<10} "
                f"I{-start:5.1f} - I{-start + rng.uniform(200, 600):5.1f}   "
                f"{rng.uniform(2, 20):5.2f}    {rng.uniform(50, 700):6.1f}  Body 32"
            )
        canvas = Image.new("L", (width, height))
        draw = ImageDraw.Draw(canvas)
        for row, text in enumerate(lines):
            draw.text((size, size + row * (size + size // 2)), text, fill=255, font=font)
        out[:, :, page] = np.asarray(canvas, np.float32).T
    spacing = (1.0, 1.0, base.spacing[2])
    return Study(f"{base.name} matrix: dose report screen capture", out, spacing)


def magnified_view(base: Study, factor: int = 2) -> Study:
    """A magnified view saved back as an image: pixels repeated ``factor`` times, spacing kept.

    Each slice is enlarged ``factor`` times about the body's centre by repeating pixels
    (nearest neighbour, as a viewer's zoom), cut to the base's matrix (the image's minimum
    where nothing is shown), and keeps the base's pixel spacing: the body is ``factor``
    times too large, and blocky.
    """
    hu = base.hu
    centre = _body_centre(hu)
    index = []
    for axis in (0, 1):
        n = hu.shape[axis]
        source = np.floor(centre[axis] + (np.arange(n) - (n - 1) / 2) / factor + 0.5).astype(int)
        index.append(source)
    valid = [(s >= 0) & (s < hu.shape[a]) for a, s in enumerate(index)]
    ii, jj = (np.clip(s, 0, hu.shape[a] - 1) for a, s in enumerate(index))
    out = hu[ii][:, jj].copy()
    out[~valid[0]] = float(hu.min())
    out[:, ~valid[1]] = float(hu.min())
    return Study(f"{base.name}: magnified x{factor} view, spacing kept", out, base.spacing)


def wrong_row_length(base: Study, extra: int = 1) -> Study:
    """Pixel data read with ``extra`` more columns per row than stored: sheared and wrapped.

    The stored rows (along ``j``, each ``i`` pixels long) of a slice are read back to back
    as rows ``i + extra`` long (a wrong Columns attribute, or padding assumed at each row's
    end): row ``r`` starts ``r * extra`` pixels later, so the image shears and wraps; the
    rows left unfilled at the end are 0 (-1024 HU). The result has ``i + extra`` columns.
    """
    size_i, size_j, count = base.hu.shape
    width = size_i + extra
    out = np.full((width, size_j, count), -1024.0, np.float32)
    for k in range(count):
        stream = base.hu[:, :, k].T.ravel()  # row-major as stored: rows j, columns i
        rows = stream.size // width
        out[:, :rows, k] = stream[: rows * width].reshape(rows, width).T
    return Study(f"{base.name}: rows read {extra} pixel(s) too long", out, base.spacing)


def sparse_view(base: Study, views: int = 60) -> Study:
    """A sparse-view reconstruction: filtered back projection of ``views`` projections.

    Each slice's attenuation (``HU + 1000``, at least 0; padded to a square with air) is
    projected at ``views`` angles over 180 degrees (``skimage.transform.radon``) and
    reconstructed by filtered back projection (ramp filter): too few views leave fine
    streaks from every edge across the whole image (a research or low-dose protocol).
    """
    out = _back_projected(base.hu, np.linspace(0.0, 180.0, views, endpoint=False))
    return Study(f"{base.name}: sparse-view reconstruction ({views} views)", out, base.spacing)


def _back_projected(hu: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Each slice projected at the angles ``theta`` (degrees) and filtered back projected.

    The attenuation ``HU + 1000`` (at least 0) is padded to a square with air, projected
    (``skimage.transform.radon``) and reconstructed with the ramp filter (``iradon``).
    """
    from skimage.transform import iradon, radon

    size_i, size_j, count = hu.shape
    side = max(size_i, size_j)
    oi, oj = (side - size_i) // 2, (side - size_j) // 2
    out = np.empty(hu.shape, np.float32)
    for k in range(count):
        mu = np.zeros((side, side))
        mu[oi : oi + size_i, oj : oj + size_j] = np.clip(hu[:, :, k] + 1000.0, 0.0, None)
        sinogram = radon(mu, theta, circle=False)
        image = iradon(sinogram, theta, output_size=side, filter_name="ramp", circle=False)
        out[:, :, k] = image[oi : oi + size_i, oj : oj + size_j] - 1000.0
    return out


def _paint(slice_hu: np.ndarray, share: np.ndarray, value: float) -> None:
    """Mix ``value`` into ``slice_hu`` (in place) with each pixel's ``share`` (0-1) of it."""
    slice_hu *= 1.0 - share
    slice_hu += value * share


def _overlap(centres: np.ndarray, pixel: float, low: float, high: float) -> np.ndarray:
    """Share of each pixel (centre ``centres``, size ``pixel``, mm) inside ``[low, high]`` (mm)."""
    inside = np.minimum(centres + pixel / 2, high) - np.maximum(centres - pixel / 2, low)
    return np.clip(inside, 0.0, None) / pixel


def ecg_electrodes(base: Study, seed: int = 0, wires: int = 3) -> Study:
    """Normal variant: ECG electrodes on the front of the body and their lead wires.

    On every slice, ``wires`` lead wires (1.2 mm across, 600 HU) lie 3-25 mm in front of
    the skin over the middle 30 % of the body's width; on every third slice, two electrodes:
    a foam pad (25 mm along the skin, 1.5 mm thick, -50 HU) on the skin and its metal
    snap (4 mm wide, 2 mm thick, 3071 HU) on the pad. Each is drawn with the share of each
    pixel it covers (partial volume). The front is the side away from the spine
    (:func:`_spine_at_low_j`).
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    pixel_i, pixel_j = base.spacing[:2]
    body = body_mask(base.hu)
    flip = _spine_at_low_j(base.hu, body, pixel_j)  # then the front is at high j
    hu = base.hu[:, ::-1].astype(np.float64) if flip else base.hu.astype(np.float64)
    body = body[:, ::-1] if flip else body
    ii = np.arange(hu.shape[0]) * pixel_i
    jj = np.arange(hu.shape[1]) * pixel_j
    half_wire = 0.6 * np.sqrt(np.pi) / 2  # half the side of a square of the wire's area
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        columns = _middle_columns(body[:, :, k])
        # the skin: the outer edge (mm) of each column's first body pixel
        skin = np.argmax(body[:, :, k], axis=1) * pixel_j - pixel_j / 2
        slice_hu = hu[:, :, k]
        for _ in range(wires):
            c = int(rng.choice(columns))
            wi, wj = c * pixel_i, skin[c] - rng.uniform(3.0, 25.0)
            across = _overlap(ii, pixel_i, wi - half_wire, wi + half_wire)
            depth = _overlap(jj, pixel_j, wj - half_wire, wj + half_wire)
            _paint(slice_hu, np.outer(across, depth), 600.0)
        if k % 3:
            continue
        for _ in range(2):
            c = int(rng.choice(columns))
            for d in columns[np.abs(columns - c) * pixel_i <= 12.5]:
                _paint(slice_hu[d], _overlap(jj, pixel_j, skin[d] - 1.5, skin[d]), -50.0)
            across = _overlap(ii, pixel_i, c * pixel_i - 2.0, c * pixel_i + 2.0)
            depth = _overlap(jj, pixel_j, skin[c] - 3.5, skin[c] - 1.5)
            _paint(slice_hu, np.outer(across, depth), 3071.0)
    hu = np.ascontiguousarray((hu[:, ::-1] if flip else hu).astype(np.float32))
    return Study(f"{base.name}: ECG electrodes and leads", hu, base.spacing)


def kvp_100(base: Study, seed: int = 0) -> Study:
    """Normal variant: the scan at 100 kVp instead of 120 kVp (the same dose index).

    Bone and iodine attenuate relatively more at lower energy: HU above 0 are raised by
    12 %, HU from -200 to 0 lowered by 5 % (fat at about -105 instead of -100 HU), and lower
    values moved less and less (air and padding kept); the noise rises by 15 % (correlated
    noise of ``sqrt(1.15² - 1)`` times the base's own, :func:`_own_noise`, inside the body).
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.astype(np.float64)
    mapped = _energy_remap(hu, 1.12, -210.0)
    body = body_mask(base.hu)
    mapped += _noise(rng, hu.shape, _own_noise(hu, body) * np.sqrt(1.15**2 - 1.0)) * body
    return Study(f"{base.name}: 100 kVp", mapped.astype(np.float32), base.spacing)


def thinner_slices(base: Study, fraction: float = 2.0 / 3.0, seed: int = 0) -> Study:
    """Normal variant: slices reconstructed ``fraction`` as thick (e.g. 2 mm instead of 3 mm).

    Fewer photons per voxel: the noise rises by ``sqrt(1 / fraction)``, as for that share of
    the dose (:func:`reduced_dose`); the sharper edges along ``k`` of a thinner slice are not
    modelled.
    """
    thin = reduced_dose(base, fraction, seed)
    return Study(f"{base.name}: slices {fraction:.2g} as thick", thin.hu, base.spacing)


def iterative_recon(base: Study, strength: float = 0.5) -> Study:
    """Normal variant: a moderate iterative reconstruction: less noise, edges kept.

    ``strength`` of the slice's 3 x 3 median blended in, ``(1 - s) * hu + s * median``: the
    median keeps edges and removes much of the noise (about a third less at 0.5).
    """
    from scipy.ndimage import median_filter

    hu = base.hu.astype(np.float64)
    median = median_filter(hu, size=(3, 3, 1))
    out = (1.0 - strength) * hu + strength * median
    name = f"{base.name}: iterative reconstruction ({strength:g})"
    return Study(name, out.astype(np.float32), base.spacing)


def table_lower(base: Study, drop_mm: float = 20.0) -> Study:
    """Normal variant: the table ``drop_mm`` lower: the patient moved towards high ``j``."""
    moved = off_centre(base, (0.0, drop_mm), 0.0)
    return Study(f"{base.name}: table {drop_mm:g} mm lower", moved.hu, base.spacing)


# Seventh family (``bench_ood_guard.py --fresh5``): kinds that none of the six earlier
# families holds, fixed before any change to the guard's fifth version and scored once with
# it; and normal variants of a kind not used before.


def late_offset(base: Study, fraction: float = 0.5) -> Study:
    """Pixel data read from an offset ``fraction`` of a row too late: the image wrapped.

    The stored stream of each slice (rows along ``j``, each ``i`` pixels long) is read
    starting ``fraction`` of a row after its true start (a wrong offset into the pixel
    data): every row shows the second part of one stored row and then the first part of the
    next, so the body is cut and its halves swapped across the image; the pixels left at
    the stream's end are 0 (-1024 HU).
    """
    size_i, size_j, count = base.hu.shape
    skip = round(fraction * size_i)
    out = np.full(base.hu.shape, -1024.0, np.float32)
    for k in range(count):
        stream = base.hu[:, :, k].T.ravel()[skip:]  # row-major as stored: rows j, columns i
        shifted = np.full(size_i * size_j, -1024.0, np.float32)
        shifted[: stream.size] = stream
        out[:, :, k] = shifted.reshape(size_j, size_i).T
    return Study(f"{base.name}: read {fraction:g} of a row late", out, base.spacing)


def bit_errors(base: Study, rate: float = 0.002, seed: int = 0) -> Study:
    """A corrupted transfer: a share ``rate`` of the pixels replaced by random stored values.

    Each hit pixel gets a stored value drawn uniformly from 0-4095 (-1024 to 3071 HU), as
    when bits of the pixel data are flipped in transit or on a failing disk.
    """
    rng = np.random.default_rng(seed)
    hu = base.hu.astype(np.float32).copy()
    hit = rng.random(hu.shape) < rate
    hu[hit] = rng.integers(0, 4096, int(hit.sum())).astype(np.float32) - 1024.0
    return Study(f"{base.name}: bit errors ({rate:.1%} of pixels)", hu, base.spacing)


def superposed_levels(base: Study) -> Study:
    """Two levels of the body superposed: each slice averaged with the slice farthest from it.

    A multi-frame object or a stack whose frames were interleaved wrongly, or two
    acquisitions averaged: slice ``k`` becomes the mean of slice ``k`` and slice
    ``n - 1 - k`` (for the middle slice of an odd count, slice 0), so two anatomies show
    through each other at half contrast.
    """
    count = base.hu.shape[2]
    if count < 2:
        raise ValueError(f"{base.name}: one slice; no second level to superpose")
    partner = [count - 1 - k if count - 1 - k != k else 0 for k in range(count)]
    out = 0.5 * (base.hu.astype(np.float64) + base.hu[:, :, partner].astype(np.float64))
    return Study(f"{base.name}: two levels superposed", out.astype(np.float32), base.spacing)


def over_smoothed(base: Study, fwhm_mm: float = 5.0) -> Study:
    """An image smoothed in-plane by a Gaussian of ``fwhm_mm`` (a display or resampling filter).

    Post-processing before export (a strong noise filter, or a resampling with a wide
    kernel) leaves neither noise nor fine edges: every structure blurred over ``fwhm_mm``.
    """
    from scipy.ndimage import gaussian_filter

    sigma = fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    sigmas = (sigma / base.spacing[0], sigma / base.spacing[1], 0.0)
    out = gaussian_filter(base.hu.astype(np.float64), sigmas, mode="nearest")
    name = f"{base.name}: smoothed by a {fwhm_mm:g} mm Gaussian"
    return Study(name, out.astype(np.float32), base.spacing)


def limited_angle(base: Study, arc_deg: float = 120.0, views: int = 120) -> Study:
    """A limited-angle reconstruction: filtered back projection of ``views`` over ``arc_deg``.

    As :func:`sparse_view`, but the projections cover only ``arc_deg`` instead of 180
    degrees (a C-arm or tomosynthesis-like sweep): edges whose normal lies outside the arc
    smear out, with bright and dark shading along the missing directions.
    """
    out = _back_projected(base.hu, np.linspace(0.0, arc_deg, views, endpoint=False))
    name = f"{base.name}: limited-angle reconstruction ({arc_deg:g} degrees)"
    return Study(name, out, base.spacing)


def inpainted_hole(base: Study, diameter_mm: float = 60.0) -> Study:
    """A disc of the body filled by biharmonic inpainting (an output of an inpainting tool).

    On each slice a disc of ``diameter_mm`` about the body's centroid is replaced by the
    smooth biharmonic fill of its surroundings (``skimage.restoration.inpaint_biharmonic``
    on a crop around it): a noise-free, featureless patch inside the body.
    """
    from skimage.restoration import inpaint_biharmonic

    from ctpipe.body_mask import body_mask

    pixel_i, pixel_j = base.spacing[:2]
    hu = base.hu.astype(np.float64).copy()
    body = body_mask(base.hu)
    radius_i, radius_j = diameter_mm / 2 / pixel_i, diameter_mm / 2 / pixel_j
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        ci, cj = (float(np.mean(a)) for a in np.nonzero(body[:, :, k]))
        i0, i1 = int(max(ci - 2 * radius_i, 0)), int(min(ci + 2 * radius_i + 1, hu.shape[0]))
        j0, j1 = int(max(cj - 2 * radius_j, 0)), int(min(cj + 2 * radius_j + 1, hu.shape[1]))
        ii, jj = np.meshgrid(np.arange(i0, i1), np.arange(j0, j1), indexing="ij")
        hole = ((ii - ci) / radius_i) ** 2 + ((jj - cj) / radius_j) ** 2 <= 1.0
        hu[i0:i1, j0:j1, k] = inpaint_biharmonic(hu[i0:i1, j0:j1, k], hole)
    name = f"{base.name}: a {diameter_mm:g} mm disc inpainted"
    return Study(name, hu.astype(np.float32), base.spacing)


def venous_enhancement(base: Study, enhancement_hu: float = 30.0) -> Study:
    """Normal variant: a portal venous phase: enhancing soft tissue ``enhancement_hu`` brighter.

    Tissue of 20-100 HU (smoothed over 2 mm, so that the noise does not pick the pixels;
    a soft edge of 1 mm) is raised by ``enhancement_hu``, as liver, spleen, kidneys and
    vessels are about a minute after an intravenous contrast injection, the most common
    abdominal CT; fat, air and bone are kept.
    """
    from scipy.ndimage import gaussian_filter

    pixel = base.spacing[:2]
    hu = base.hu.astype(np.float64)
    smooth = gaussian_filter(hu, (2.0 / pixel[0], 2.0 / pixel[1], 0.0))
    tissue = ((smooth > 20.0) & (smooth < 100.0)).astype(np.float64)
    share = gaussian_filter(tissue, (1.0 / pixel[0], 1.0 / pixel[1], 0.0))
    out = hu + enhancement_hu * share
    name = f"{base.name}: portal venous phase (+{enhancement_hu:g} HU)"
    return Study(name, out.astype(np.float32), base.spacing)


def twice_finer_matrix(base: Study) -> Study:
    """Normal variant: a matrix twice as fine (512 -> 1024) for a base of pixels up to 1 mm.

    Raises:
        ValueError: The base's pixels are larger than 1 mm (interpolated, their noise would
            be smoother than a real fine matrix's).
    """
    if max(base.spacing[:2]) > 1.0:
        raise ValueError(f"{base.name}: pixels of {base.spacing[0]:g} mm; no finer matrix made")
    fine = finer_matrix(base, 2.0)
    return Study(f"{base.name}: matrix twice as fine", fine.hu, fine.spacing)


def blanket(base: Study, gap_mm: float = 10.0, thickness_mm: float = 8.0, seed: int = 0) -> Study:
    """Normal variant: a folded blanket over the front of the body.

    A layer of ``thickness_mm`` of fabric and trapped air (-750 HU, 40 HU of noise) lies
    ``gap_mm`` in front of the skin over the middle 80 % of the body's width; the front is
    the side away from the spine (:func:`_spine_at_low_j`).
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    pixel_j = base.spacing[1]
    body = body_mask(base.hu)
    flip = _spine_at_low_j(base.hu, body, pixel_j)  # then the front is at high j
    hu = base.hu[:, ::-1].astype(np.float64) if flip else base.hu.astype(np.float64)
    body = body[:, ::-1] if flip else body
    jj = np.arange(hu.shape[1]) * pixel_j
    for k in range(hu.shape[2]):
        rows = np.flatnonzero(body[:, :, k].any(axis=1))
        if rows.size == 0:
            continue
        margin = int(0.1 * rows.size)
        for i in rows[margin : rows.size - margin]:
            skin = np.argmax(body[i, :, k]) * pixel_j
            layer = (jj >= skin - gap_mm - thickness_mm) & (jj < skin - gap_mm)
            hu[i, layer, k] = -750.0 + rng.normal(0.0, 40.0, int(layer.sum()))
    hu = np.ascontiguousarray((hu[:, ::-1] if flip else hu).astype(np.float32))
    return Study(f"{base.name}: a blanket over the body", hu, base.spacing)


# Eighth family (``bench_ood_guard.py --fresh6``): kinds that none of the seven earlier
# families holds, fixed before the guard's sixth version was designed; and normal variants
# of a kind not used before.


def blank_slices(base: Study) -> Study:
    """A failed reconstruction or padding frames: every pixel at the lowest value (-1024 HU)."""
    hu = np.full(base.hu.shape, -1024.0, np.float32)
    return Study(f"{base.name}: blank slices", hu, base.spacing)


def dense_bolus(base: Study, bolus_hu: float = 2500.0, seed: int = 0, streaks: int = 8) -> Study:
    """Undiluted contrast in a vein during injection, with the streaks it casts.

    A vein 8 mm across at 2500 HU in the body, a fifth of its width from one side and a
    fifth of its height from the front (where the subclavian vein and the superior vena
    cava run), on every slice; ``streaks`` lines through it at evenly spread angles,
    alternating +300 / -300 HU and fading with distance (about half as strong as metal's).
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    hu = base.hu.astype(np.float64).copy()
    pixel_i, pixel_j = base.spacing[:2]
    body = body_mask(base.hu)
    ii = (np.arange(hu.shape[0]) * pixel_i)[:, None]
    jj = (np.arange(hu.shape[1]) * pixel_j)[None, :]
    for k in range(hu.shape[2]):
        rows, columns = np.nonzero(body[:, :, k])
        if rows.size == 0:
            continue
        cx = (rows.min() + 0.2 * (rows.max() - rows.min())) * pixel_i
        cy = (columns.min() + 0.2 * (columns.max() - columns.min())) * pixel_j
        distance = np.hypot(ii - cx, jj - cy)
        streak = _streaks(distance, np.arctan2(jj - cy, ii - cx), rng, streaks, 300.0, 80.0)
        hu[:, :, k] += streak * body[:, :, k]
        hu[:, :, k][distance <= 4.0] = bolus_hu
    return Study(f"{base.name}: dense venous bolus", hu.astype(np.float32), base.spacing)


def preview_upscaled(base: Study, factor: int = 4) -> Study:
    """A thumbnail saved back as the image: ``factor`` x ``factor`` block means, repeated.

    The slice is averaged over blocks of ``factor`` pixels (a preview or key image) and
    blown up again by repeating each block's mean (nearest neighbour), with the original
    pixel spacing: a blocky image without noise or fine detail.
    """
    size_i, size_j, count = base.hu.shape
    ci, cj = size_i // factor * factor, size_j // factor * factor
    hu = base.hu[:ci, :cj].astype(np.float64)
    means = hu.reshape(ci // factor, factor, cj // factor, factor, count).mean(axis=(1, 3))
    blocks = np.repeat(np.repeat(means, factor, axis=0), factor, axis=1)
    out = np.full(base.hu.shape, -1024.0, np.float32)
    out[:ci, :cj] = blocks
    return Study(f"{base.name}: a {factor}x preview scaled up", out, base.spacing)


def stretched(base: Study, factor: float = 1.3) -> Study:
    """Non-square pixels declared square: the image stretched ``factor`` times front to back.

    Each slice is resampled so that the body is ``factor`` times taller along ``j`` about
    the image's centre (as when PixelSpacing's two values differ and a reader takes the
    first for both), with the spacing kept.
    """
    hu = np.maximum(base.hu, -1024.0)
    matrix = np.diag([1.0, 1.0 / factor])
    centre = (np.asarray(hu.shape[:2]) - 1) / 2
    offset = centre - matrix @ centre
    out = _affine_slices(hu, matrix, offset, -1024.0, hu.shape[:2])
    return Study(f"{base.name}: stretched x{factor:g} front to back", out, base.spacing)


def shifted_band(base: Study, rows_mm: float = 30.0, shift_mm: float = 70.0) -> Study:
    """A partly corrupted slice: a band of rows across the body's middle shifted sideways.

    On each slice the rows (along ``j``) within ``rows_mm`` about the body's centre are
    moved ``shift_mm`` along ``i``, wrapping around (part of the pixel stream written at
    the wrong offset): the body is torn along two edges.
    """
    from ctpipe.body_mask import body_mask

    hu = base.hu.astype(np.float32).copy()
    body = body_mask(base.hu)
    half = round(rows_mm / 2 / base.spacing[1])
    shift = round(shift_mm / base.spacing[0])
    for k in range(hu.shape[2]):
        columns = np.flatnonzero(body[:, :, k].any(axis=0))
        if columns.size == 0:
            continue
        middle = int(columns.mean())
        band = slice(max(middle - half, 0), middle + half)
        hu[:, band, k] = np.roll(hu[:, band, k], shift, axis=0)
    return Study(f"{base.name}: a band of rows shifted {shift_mm:g} mm", hu, base.spacing)


def banding(base: Study, period_mm: float = 6.0, amplitude_hu: float = 15.0) -> Study:
    """Detector banding: bright and dark stripes of ``amplitude_hu`` across the body.

    ``+amplitude_hu`` and ``-amplitude_hu`` alternate every half ``period_mm`` along ``i``
    inside the body (a miscalibrated detector module read out in a parallel geometry).
    """
    from ctpipe.body_mask import body_mask

    body = body_mask(base.hu)
    i = np.arange(base.hu.shape[0]) * base.spacing[0]
    stripes = np.where(np.sin(2 * np.pi * i / period_mm) >= 0, amplitude_hu, -amplitude_hu)
    out = base.hu + (stripes[:, None, None] * body).astype(np.float32)
    return Study(f"{base.name}: banding ({amplitude_hu:g} HU)", out, base.spacing)


def kvp_140(base: Study) -> Study:
    """Normal variant: the scan at 140 kVp: HU above 0 lowered by 8 %, fat 3 % brighter."""
    mapped = _energy_remap(base.hu.astype(np.float64), 0.92, -194.0)
    return Study(f"{base.name}: 140 kVp", mapped.astype(np.float32), base.spacing)


def slimmer(base: Study, scale: float = 0.9) -> Study:
    """Normal variant: a slimmer patient: every slice narrowed to ``scale`` across (along ``i``)."""
    hu = np.maximum(base.hu, -1024.0)
    matrix = np.diag([1.0 / scale, 1.0])
    centre = (np.asarray(hu.shape[:2]) - 1) / 2
    offset = centre - matrix @ centre
    out = _affine_slices(hu, matrix, offset, float(hu.min()), hu.shape[:2])
    return Study(f"{base.name}: {scale:.0%} as wide", out, base.spacing)


# Ninth family (``bench_ood_guard.py --fresh7``): kinds that none of the eight earlier
# families holds, fixed before the guard's seventh version was designed; and normal variants
# of a kind not used before.


def _mm_grid(shape: tuple[int, ...], spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Millimetre coordinates ``(i, j)`` of a slice's pixel centres, from the first pixel.

    Returned as a column and a row that broadcast to ``shape[:2]``.
    """
    ii = (np.arange(shape[0]) * spacing[0])[:, None]
    jj = (np.arange(shape[1]) * spacing[1])[None, :]
    return ii, jj


def gamma_mapped(base: Study, gamma: float = 0.5) -> Study:
    """A non-linear intensity transfer baked into the values (a VOI LUT saved as HU).

    HU in [-1024, 3071] (values outside are clipped) are mapped to ``t`` in [0, 1],
    ``t ** gamma`` is taken and mapped back to [-1024, 3071]: the ends are kept, everything
    between is brightened (soft tissue by about 1000 HU for ``gamma`` 0.5).

    Args:
        base: An in-distribution CT.
        gamma: The exponent of the transfer (below 1: brighter).
    """
    t = (np.clip(base.hu.astype(np.float64), -1024.0, 3071.0) + 1024.0) / 4095.0
    hu = (t**gamma * 4095.0 - 1024.0).astype(np.float32)
    return Study(f"{base.name}: gamma-mapped values ({gamma:g})", hu, base.spacing)


def _clearance(body: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) of each ``(i, j)`` to the nearest pixel outside the body on any slice.

    The minimum over the slices that hold a body of each slice's distance transform; the
    image's border counts as outside. All zeros where no slice holds a body.
    """
    from scipy.ndimage import distance_transform_edt

    room = np.zeros(body.shape[:2])
    present = [k for k in range(body.shape[2]) if body[:, :, k].any()]
    for n, k in enumerate(present):
        inside = np.pad(body[:, :, k], 1)
        distance = distance_transform_edt(inside, sampling=spacing[:2])[1:-1, 1:-1]
        room = distance if n == 0 else np.minimum(room, distance)
    return room


def _place_discs(
    room: np.ndarray,
    spacing: tuple[float, ...],
    rng: np.random.Generator,
    radii_mm: np.ndarray,
    margin_mm: float,
) -> list[tuple[float, float, float]]:
    """Centres ``(i, j)`` (mm) and radii of discs placed at random, apart from each other.

    Each disc of ``radii_mm`` (in turn) goes where ``room`` (mm, :func:`_clearance`) is at
    least ``margin_mm`` plus its radius and it does not overlap a disc placed before; a
    disc with no such place is left out.
    """
    ii, jj = _mm_grid(room.shape, spacing)
    placed: list[tuple[float, float, float]] = []
    for radius in radii_mm:
        free = room >= margin_mm + radius
        for ci, cj, other in placed:
            free &= np.hypot(ii - ci, jj - cj) >= radius + other
        candidates = np.argwhere(free)
        if len(candidates):
            i, j = candidates[rng.integers(len(candidates))]
            placed.append((float(ii[i, 0]), float(jj[0, j]), float(radius)))
    return placed


def ct_colonography(
    base: Study, seed: int = 0, wall_mm: float = 2.0, skin_mm: float = 30.0
) -> Study:
    """CT colonography: the colon distended with air, seen as air-filled loops in cross-section.

    4-6 (seeded) discs of air (-1000 HU), 25-40 mm across, each in a wall of ``wall_mm`` at
    40 HU, lie apart from each other at least ``skin_mm`` inside the body (on every slice
    that holds a body: :func:`_clearance`), at the same place on every such slice (tubes
    running along ``k``). Discs that find no room are left out.

    Args:
        base: An in-distribution CT.
        seed: Seeds the number, sizes and places of the loops.
        wall_mm: The thickness of the colon's wall.
        skin_mm: The least distance of a wall from the outside of the body.
    """
    from ctpipe.body_mask import body_mask

    rng = np.random.default_rng(seed)
    body = body_mask(base.hu)
    lumens = rng.uniform(25.0, 40.0, int(rng.integers(4, 7))) / 2
    room = _clearance(body, base.spacing)
    discs = _place_discs(room, base.spacing, rng, lumens + wall_mm, skin_mm)
    ii, jj = _mm_grid(base.hu.shape, base.spacing)
    hu = base.hu.astype(np.float32).copy()
    for k in np.flatnonzero(body.any(axis=(0, 1))):
        for ci, cj, outer in discs:
            distance = np.hypot(ii - ci, jj - cj)
            hu[:, :, k][distance <= outer] = 40.0
            hu[:, :, k][distance <= outer - wall_mm] = -1000.0
    return Study(f"{base.name}: CT colonography", hu, base.spacing)


def posterised(base: Study, step_hu: float = 32.0) -> Study:
    """A lossy down-conversion (to about 7 bits): values rounded to multiples of ``step_hu``.

    Args:
        base: An in-distribution CT.
        step_hu: The step between the values that remain.
    """
    hu = (np.round(base.hu.astype(np.float64) / step_hu) * step_hu).astype(np.float32)
    return Study(f"{base.name}: posterised ({step_hu:g} HU steps)", hu, base.spacing)


def mirrored_half(base: Study) -> Study:
    """A synthetic symmetric image: one half of the body replaced by the other, mirrored.

    On each slice, the columns ``i`` below the centre of the body's extent along ``i`` (the
    image's left) take the values of their mirror images about that centre (the right
    half flipped); a column whose mirror lies outside the image is kept. Slices without a
    body are kept.

    Args:
        base: An in-distribution CT.
    """
    from ctpipe.body_mask import body_mask

    body = body_mask(base.hu)
    hu = base.hu.astype(np.float32).copy()
    index = np.arange(hu.shape[0])
    for k in range(hu.shape[2]):
        rows = np.flatnonzero(body[:, :, k].any(axis=1))
        if rows.size == 0:
            continue
        mirror = rows[0] + rows[-1] - index  # about (rows[0] + rows[-1]) / 2
        source = np.where((2 * index < rows[0] + rows[-1]) & (mirror < index.size), mirror, index)
        hu[:, :, k] = base.hu[source, :, k]
    return Study(f"{base.name}: mirrored half", hu, base.spacing)


def water_immersion(base: Study, radius_mm: float | None = None) -> Study:
    """The patient in a water bath: air around the body, inside a circle, set to 0 HU.

    Every pixel below -500 HU (air: below the body mask's threshold) outside the body within
    ``radius_mm`` of the image's centre becomes water; the body and everything else are kept.

    Args:
        base: An in-distribution CT.
        radius_mm: The bath's radius; ``None``: the largest circle that fits the image.
    """
    from ctpipe.body_mask import body_mask

    ii, jj = _mm_grid(base.hu.shape, base.spacing)
    ci, cj = ii[-1, 0] / 2, jj[0, -1] / 2
    radius = min(ci, cj) if radius_mm is None else radius_mm
    bath = (np.hypot(ii - ci, jj - cj) <= radius)[:, :, None]
    air = (base.hu < -500) & ~body_mask(base.hu)
    hu = np.where(bath & air, 0.0, base.hu).astype(np.float32)
    return Study(f"{base.name}: in a water bath", hu, base.spacing)


def _smooth_field(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A smooth ``(i, j)`` field spanning [-1, 1]: a random 2nd-order polynomial, rescaled."""
    u = np.linspace(-1.0, 1.0, shape[0])[:, None]
    v = np.linspace(-1.0, 1.0, shape[1])[None, :]
    terms = (u, v, u * u, u * v, v * v)
    field = sum(c * t for c, t in zip(rng.normal(size=len(terms)), terms, strict=True))
    span = np.ptp(field)
    return np.zeros(shape[:2]) if span == 0 else 2.0 * (field - field.min()) / span - 1.0


def gain_field(base: Study, strength: float = 0.10, seed: int = 0) -> Study:
    """A smooth multiplicative inhomogeneity on attenuation, like an MR bias field.

    ``(hu + 1000) * (1 + strength * f) - 1000`` with ``f`` a smooth field in [-1, 1]
    (:func:`_smooth_field`, seeded), the same on every slice: air is kept, and tissue is
    up to ``strength`` brighter on one side of the image and darker on the other.

    Args:
        base: An in-distribution CT.
        strength: The largest relative change of attenuation.
        seed: Seeds the field's shape.
    """
    field = _smooth_field(base.hu.shape, np.random.default_rng(seed))[:, :, None]
    hu = (base.hu.astype(np.float64) + 1000.0) * (1.0 + strength * field) - 1000.0
    return Study(f"{base.name}: gain field ({strength:.0%})", hu.astype(np.float32), base.spacing)


def _draw_arm(
    slice_hu: np.ndarray, x: np.ndarray, y: np.ndarray, size_mm: tuple[float, float]
) -> np.ndarray:
    """Paint an arm (in place) at ``(x, y)`` mm from its centre; returns its mask.

    An ellipse of ``size_mm`` across (``i``, ``j``): a 4 mm rim of fat (-100 HU), muscle and
    skin (40 HU) within, and a humerus-like bone disc 12 mm across at 700 HU in the middle.
    """
    a, b = size_mm[0] / 2, size_mm[1] / 2
    arm = (x / a) ** 2 + (y / b) ** 2 <= 1.0
    slice_hu[arm] = -100.0
    slice_hu[(x / (a - 4.0)) ** 2 + (y / (b - 4.0)) ** 2 <= 1.0] = 40.0
    slice_hu[np.hypot(x, y) <= 6.0] = 700.0
    return arm


def arms_down(
    base: Study,
    seed: int = 0,
    gap_mm: float = 15.0,
    size_mm: tuple[float, float] = (45.0, 35.0),
) -> Study:
    """Normal variant: the arms beside the body (a scan with the arms down).

    As a scanner does for such a scan, the field of view is first widened on the same
    matrix (:func:`wider_fov`, in steps of 5 %) until both arms fit beside the body on
    every slice that holds one. On each slice two arms (:func:`_draw_arm`, ``size_mm``
    across) then lie ``gap_mm`` beyond the body's edges along ``i``, centred on the body's
    centre along ``j``, with noise of the base's own level (:func:`_own_noise`).

    Args:
        base: An in-distribution CT.
        seed: Seeds the arms' noise.
        gap_mm: The gap between each arm and the body.
        size_mm: Each arm's width (along ``i``) and depth (along ``j``).

    Raises:
        ValueError: The arms do not fit even in a field of view twice as wide.
    """
    from ctpipe.body_mask import body_mask

    for factor in np.arange(1.0, 2.001, 0.05):
        study = base if factor == 1.0 else wider_fov(base, float(factor))
        body = body_mask(study.hu)
        places = [_arm_centres(body[:, :, k], study, gap_mm, size_mm) for k in range(body.shape[2])]
        if all(p is not False for p in places):
            break
    else:
        raise ValueError(f"{base.name}: the arms do not fit in a field of view twice as wide")
    rng = np.random.default_rng(seed)
    sigma = _own_noise(study.hu.astype(np.float64), body)
    hu = study.hu.astype(np.float32).copy()
    ii, jj = _mm_grid(hu.shape, study.spacing)
    for k, place in enumerate(places):
        if place is None:
            continue
        noise = _noise(rng, hu.shape[:2], sigma)
        for ci in place[:2]:
            arm = _draw_arm(hu[:, :, k], ii - ci, jj - place[2], size_mm)
            hu[:, :, k][arm] += noise[arm]
    return Study(f"{base.name}: arms down", hu, study.spacing)


def _arm_centres(
    body: np.ndarray, study: Study, gap_mm: float, size_mm: tuple[float, float]
) -> tuple[float, float, float] | bool | None:
    """The two arms' centres ``(i left, i right, j)`` in mm on one slice of ``study``.

    ``None`` where the slice holds no body, ``False`` where an arm would leave the image.
    """
    rows, columns = np.nonzero(body)
    if rows.size == 0:
        return None
    pixel_i, pixel_j = study.spacing[:2]
    half = size_mm[0] / 2
    left = (rows.min() - 0.5) * pixel_i - gap_mm - half
    right = (rows.max() + 0.5) * pixel_i + gap_mm + half
    cj = (columns.min() + columns.max()) / 2 * pixel_j
    inside_i = left - half >= 0 and right + half <= (body.shape[0] - 1) * pixel_i
    inside_j = size_mm[1] / 2 <= cj <= (body.shape[1] - 1) * pixel_j - size_mm[1] / 2
    return (left, right, cj) if inside_i and inside_j else False


def nasogastric_tube(
    base: Study, diameter_mm: float = 5.0, wall_mm: float = 1.0, wall_hu: float = 100.0
) -> Study:
    """Normal variant: a nasogastric tube: a small plastic tube with air in it, in the body.

    A tube ``diameter_mm`` across (a wall of ``wall_mm`` at ``wall_hu``, air inside) lies a
    third of the body's width from its low-``i`` edge (the image's left) and a quarter of
    its height from its low-``j`` edge (the front), on every slice; only body pixels change.

    Args:
        base: An in-distribution CT.
        diameter_mm: The tube's outer diameter.
        wall_mm: The thickness of its wall.
        wall_hu: The wall's value (plastic).
    """
    from ctpipe.body_mask import body_mask

    body = body_mask(base.hu)
    hu = base.hu.astype(np.float32).copy()
    ii, jj = _mm_grid(hu.shape, base.spacing)
    for k in range(hu.shape[2]):
        rows, columns = np.nonzero(body[:, :, k])
        if rows.size == 0:
            continue
        ci = (rows.min() + (rows.max() - rows.min()) / 3) * base.spacing[0]
        cj = (columns.min() + (columns.max() - columns.min()) / 4) * base.spacing[1]
        distance = np.hypot(ii - ci, jj - cj)
        slice_hu, inside = hu[:, :, k], body[:, :, k]
        slice_hu[(distance <= diameter_mm / 2) & inside] = wall_hu
        slice_hu[(distance <= diameter_mm / 2 - wall_mm) & inside] = -1000.0
    return Study(f"{base.name}: a nasogastric tube", hu, base.spacing)


# Tenth family (``bench_ood_guard.py --fresh8``): kinds that none of the nine earlier
# families holds, fixed before the guard's seventh version was designed; and normal variants
# of a kind not used before.


def _base_and_noise(
    base: Study, seed: int
) -> tuple[np.ndarray, np.ndarray, np.random.Generator, float]:
    """A base's HU (float64 copy), body mask, a seeded generator and its own noise level (HU)."""
    from ctpipe.body_mask import body_mask

    hu = base.hu.astype(np.float64)
    body = body_mask(base.hu)
    return hu, body, np.random.default_rng(seed), _own_noise(hu, body)


def _front_band(body: np.ndarray, pixel_j: float, near_mm: float, far_mm: float) -> np.ndarray:
    """Body pixels of a 2-D mask ``near_mm`` to ``far_mm`` behind its front edge, per column.

    The front edge of a column ``i`` is its first body pixel along ``j``; only the middle
    60 % of the body's width (:func:`_middle_columns`) is taken.
    """
    band = np.zeros_like(body)
    columns = _middle_columns(body, share=0.6)
    front = np.argmax(body[columns], axis=1)
    depth = (np.arange(body.shape[1])[None, :] - front[:, None]) * pixel_j
    band[columns] = (depth >= near_mm) & (depth < far_mm) & body[columns]
    return band


def pneumoperitoneum(base: Study, depth_mm: float = 15.0, seed: int = 0) -> Study:
    """Free air in the abdomen, risen under the front abdominal wall (a supine patient).

    On each slice, body pixels ``8`` to ``8 + depth_mm`` mm behind the body's front edge
    (low ``j``, measured along ``j`` in each column) within the middle 60 % of the body's
    width along ``i`` (:func:`_front_band`) become air: -1000 HU plus noise of the base's
    own level (:func:`_own_noise`).

    Args:
        base: An in-distribution CT.
        depth_mm: The depth of the layer of air.
        seed: Seeds the noise.
    """
    hu, body, rng, sigma = _base_and_noise(base, seed)
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        air = _front_band(body[:, :, k], base.spacing[1], 8.0, 8.0 + depth_mm)
        hu[:, :, k][air] = -1000.0 + _noise(rng, hu.shape[:2], sigma)[air]
    name = f"{base.name}: pneumoperitoneum ({depth_mm:g} mm)"
    return Study(name, hu.astype(np.float32), base.spacing)


def _depth_in_body(body: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray | None:
    """Distance (mm) of each pixel of a 2-D body mask to the nearest pixel outside it.

    Pixels beyond the image do not count as outside (a body cut by the image's edge has
    its wall beyond it). ``None`` where the slice holds no body or nothing outside it.
    """
    from scipy.ndimage import distance_transform_edt

    if body.all() or not body.any():
        return None
    return distance_transform_edt(body, sampling=spacing[:2])


def ascites(base: Study, depth_mm: float = 25.0, fluid_hu: float = 10.0, seed: int = 0) -> Study:
    """Ascites: fluid filling the periphery of the abdomen, inside its wall.

    On each slice, body pixels whose distance to the outside of the body
    (:func:`_depth_in_body`) is 20 to ``20 + depth_mm`` mm and whose value is -200 to 200
    HU (fat and soft tissue; not lung, gas or bone) become ``fluid_hu`` plus noise of the
    base's own level (:func:`_own_noise`).

    Args:
        base: An in-distribution CT.
        depth_mm: The thickness of the layer of fluid.
        fluid_hu: The fluid's value (simple ascites: near water).
        seed: Seeds the noise.
    """
    hu, body, rng, sigma = _base_and_noise(base, seed)
    for k in range(hu.shape[2]):
        depth = _depth_in_body(body[:, :, k], base.spacing)
        if depth is None:
            continue
        soft = (hu[:, :, k] >= -200.0) & (hu[:, :, k] <= 200.0)
        fluid = body[:, :, k] & soft & (depth >= 20.0) & (depth <= 20.0 + depth_mm)
        hu[:, :, k][fluid] = fluid_hu + _noise(rng, hu.shape[:2], sigma)[fluid]
    return Study(f"{base.name}: ascites", hu.astype(np.float32), base.spacing)


def white_noise_texture(base: Study, seed: int = 0) -> Study:
    """The noise texture swapped: the base's noise replaced by white noise of its level.

    Inside the body, each slice is smoothed by a Gaussian of 1.5 mm (its own, correlated
    noise removed) and white Gaussian noise (independent from pixel to pixel, as no CT
    reconstruction kernel leaves it) of the base's own level (:func:`_own_noise`) is added;
    outside the body the base is kept. On pixels much coarser than 1.5 mm the base's own
    noise is only partly removed.

    Args:
        base: An in-distribution CT.
        seed: Seeds the noise.
    """
    from scipy.ndimage import gaussian_filter

    hu, body, rng, sigma = _base_and_noise(base, seed)
    smooth = gaussian_filter(hu, (1.5 / base.spacing[0], 1.5 / base.spacing[1], 0))
    white = smooth + rng.normal(0.0, sigma, hu.shape)
    out = np.where(body, white, hu).astype(np.float32)
    return Study(f"{base.name}: white noise texture", out, base.spacing)


def alternating_offset(base: Study, offset_hu: float = 25.0) -> Study:
    """Slice-to-slice calibration flicker: even slices ``+offset_hu``, odd ones ``-offset_hu``.

    Only body pixels change; the air around the body is kept.

    Args:
        base: An in-distribution CT.
        offset_hu: The size of each slice's offset.
    """
    from ctpipe.body_mask import body_mask

    sign = np.where(np.arange(base.hu.shape[2]) % 2 == 0, 1.0, -1.0)
    hu = base.hu + offset_hu * sign[None, None, :] * body_mask(base.hu)
    name = f"{base.name}: slice-to-slice flicker (+-{offset_hu:g} HU)"
    return Study(name, hu.astype(np.float32), base.spacing)


def _needle_entry(body: np.ndarray, spacing: tuple[float, ...]) -> tuple[float, float] | None:
    """Where a needle from the right enters a 2-D body mask: ``(i, j)`` in mm, or ``None``.

    On the row ``j`` through the body's centre along ``j``, the outer edge of its last body
    pixel along ``i`` (the body's right side).
    """
    rows, columns = np.nonzero(body)
    if rows.size == 0:
        return None
    j = round((columns.min() + columns.max()) / 2)
    along = np.flatnonzero(body[:, j])
    return (along.max() + 0.5) * spacing[0], j * spacing[1]


def _needle_streaks(across: np.ndarray, beyond: np.ndarray, amplitude_hu: float) -> np.ndarray:
    """Metal-like streaks along a needle: alternating dark and bright bands beside it.

    Bands 1.5 mm wide (Gaussian) run parallel to the needle at 0, 3, 6 and 9 mm on either
    side (``across``: signed distance to the needle's line, mm), dark on the line itself
    and then alternately bright and dark, each ``amplitude_hu`` strong and fading as
    ``exp(-beyond / 60 mm)`` (``beyond``: distance to the needle, mm; so the bands run on
    past its ends).
    """
    streak = np.zeros_like(across)
    for m in range(-3, 4):
        sign = 1.0 if m % 2 else -1.0
        streak += sign * amplitude_hu * np.exp(-(((across - 3.0 * m) / 1.5) ** 2))
    return streak * np.exp(-beyond / 60.0)


def _needle_geometry(
    shape: tuple[int, ...],
    spacing: tuple[float, ...],
    entry: tuple[float, float],
    angle_deg: float,
    length_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's signed distance to a needle's line and its distance to the needle (mm).

    The needle runs ``length_mm`` from ``entry`` (mm) towards low ``i``, tilted towards
    high ``j`` by ``angle_deg`` from the ``i`` axis.
    """
    ii, jj = _mm_grid(shape, spacing)
    theta = np.deg2rad(angle_deg)
    di, dj = ii - entry[0], jj - entry[1]
    along = -np.cos(theta) * di + np.sin(theta) * dj
    across = np.sin(theta) * di + np.cos(theta) * dj
    beyond = np.hypot(along - np.clip(along, 0.0, length_mm), across)
    return across, beyond


def biopsy_needle(
    base: Study,
    seed: int = 0,
    length_mm: float = 100.0,
    angle_deg: float = 30.0,
    streak_hu: float = 300.0,
) -> Study:
    """A CT-fluoroscopy image of a biopsy: a straight metal needle in the body, at low dose.

    The scan is first taken at half the dose (:func:`reduced_dose`: the body's noise
    raised to ``sqrt(2)`` times the base's own). On every slice that holds a body, a needle
    1.2 mm wide (at least one pixel: a pixel is on it when its centre lies within
    ``max(0.6 mm, half a pixel)`` of it) at 3000 HU enters the body from its right side
    (high ``i``) at the body's centre along ``j`` (:func:`_needle_entry`) and runs
    ``length_mm`` into it, ``angle_deg`` from the ``i`` axis (:func:`_needle_geometry`);
    bands of ``streak_hu`` along it (:func:`_needle_streaks`, half as strong as
    :func:`metal_streaks`) are added inside the body.

    Args:
        base: An in-distribution CT.
        seed: Seeds the added noise.
        length_mm: The needle's length inside the body.
        angle_deg: The needle's angle to the ``i`` axis.
        streak_hu: The strength of the streaks.
    """
    from ctpipe.body_mask import body_mask

    body = body_mask(base.hu)
    hu = reduced_dose(base, dose=0.5, seed=seed).hu.copy()
    half_width = max(0.6, max(base.spacing[:2]) / 2)
    for k in range(hu.shape[2]):
        entry = _needle_entry(body[:, :, k], base.spacing)
        if entry is None:
            continue
        across, beyond = _needle_geometry(hu.shape, base.spacing, entry, angle_deg, length_mm)
        streaks = _needle_streaks(across, beyond, streak_hu) * body[:, :, k]
        hu[:, :, k] += streaks.astype(np.float32)
        hu[:, :, k][beyond <= half_width] = 3000.0
    return Study(f"{base.name}: biopsy needle (CT fluoroscopy)", hu, base.spacing)


def directional_motion_blur(base: Study, length_mm: float = 10.0) -> Study:
    """Breathing during the rotation: each slice smeared front to back (along ``j``).

    Each slice is the mean of its copies shifted by every whole number of pixels along
    ``j`` from ``-length_mm / 2`` to ``+length_mm / 2`` (a box blur along ``j`` only); the
    image's first and last rows are repeated beyond its edges.

    Args:
        base: An in-distribution CT.
        length_mm: The extent of the motion.
    """
    reach = int(np.floor(length_mm / 2 / base.spacing[1] + 1e-9))
    padded = np.pad(base.hu.astype(np.float64), ((0, 0), (reach, reach), (0, 0)), mode="edge")
    size = base.hu.shape[1]
    hu = sum(padded[:, s : s + size] for s in range(2 * reach + 1)) / (2 * reach + 1)
    name = f"{base.name}: motion blur front to back ({length_mm:g} mm)"
    return Study(name, np.asarray(hu, np.float32), base.spacing)


def more_subcutaneous_fat(
    base: Study, thickness_mm: float = 15.0, skin_mm: float = 2.0, seed: int = 0
) -> Study:
    """Normal variant: a heavier patient: the body grown outwards by a layer of fat.

    On each slice that holds a body, the pixels outside it within ``thickness_mm`` of it
    (the distance transform of the outside) become fat, -100 HU, and the outermost
    ``skin_mm`` of them skin, 40 HU, each plus noise of the base's own level
    (:func:`_own_noise`); where the grown body would leave the image it is cut at the
    image's edge. The body itself is kept.

    Args:
        base: An in-distribution CT.
        thickness_mm: The thickness of the added fat (the skin included).
        skin_mm: The thickness of the skin at the new outer edge.
        seed: Seeds the noise.
    """
    from scipy.ndimage import distance_transform_edt

    hu, body, rng, sigma = _base_and_noise(base, seed)
    for k in range(hu.shape[2]):
        if not body[:, :, k].any():
            continue
        distance = distance_transform_edt(~body[:, :, k], sampling=base.spacing[:2])
        grown = (distance > 0) & (distance <= thickness_mm)
        layer = np.where(distance > thickness_mm - skin_mm, 40.0, -100.0)
        hu[:, :, k][grown] = (layer + _noise(rng, hu.shape[:2], sigma))[grown]
    name = f"{base.name}: {thickness_mm:g} mm more subcutaneous fat"
    return Study(name, hu.astype(np.float32), base.spacing)


def _board_rows(body: np.ndarray, pixel_j: float, thickness_mm: float) -> tuple[int, int] | None:
    """Rows ``j`` (first, one past the last) of a board under a 2-D body mask, or ``None``.

    The board starts 2 mm (at least one pixel) below the body's lowest pixel along ``j``
    and is ``thickness_mm`` thick (at least one pixel); the rows may lie beyond the image.
    """
    columns = np.flatnonzero(body.any(axis=0))
    if columns.size == 0:
        return None
    top = columns.max() + 1 + max(1, round(2.0 / pixel_j))
    return top, top + max(1, round(thickness_mm / pixel_j))


def _board_fits(study: Study, thickness_mm: float) -> bool:
    """Whether a board (:func:`_board_rows`) fits whole in the image under every body."""
    from ctpipe.body_mask import body_mask

    body = body_mask(study.hu)
    pixel_j, size_j = study.spacing[1], study.hu.shape[1]
    rows = [_board_rows(body[:, :, k], pixel_j, thickness_mm) for k in range(body.shape[2])]
    return all(r is None or r[1] <= size_j for r in rows)


def positioning_board(
    base: Study, thickness_mm: float = 8.0, width_mm: float = 400.0, seed: int = 0
) -> Study:
    """Normal variant: a radiotherapy positioning board under the patient.

    As a scanner does to take the board in, the field of view is first widened on the same
    matrix (:func:`wider_fov`, in steps of 5 %, at most twice) until the board fits under the
    body on every slice that holds one. On each such slice a flat plate of carbon-fibre foam,
    ``thickness_mm`` thick at -200 HU plus noise of the base's own level
    (:func:`_own_noise`), ``width_mm`` wide along ``i`` centred on the body, lies directly
    below the body (:func:`_board_rows`: its top 2 mm below the body's lowest point along
    ``j``), cut at the image's edges; a slice where it would fall entirely outside the
    image is skipped.

    Args:
        base: An in-distribution CT.
        thickness_mm: The board's thickness.
        width_mm: The board's width.
        seed: Seeds the noise.
    """
    for factor in np.arange(1.0, 2.001, 0.05):
        study = base if factor == 1.0 else wider_fov(base, float(factor))
        if _board_fits(study, thickness_mm):
            break
    hu, body, rng, sigma = _base_and_noise(study, seed)
    ii, _ = _mm_grid(hu.shape, study.spacing)
    for k in range(hu.shape[2]):
        rows = _board_rows(body[:, :, k], study.spacing[1], thickness_mm)
        if rows is None or rows[0] >= hu.shape[1]:
            continue
        centre = _body_extent(body[:, :, k])[0][0] * study.spacing[0]
        board = np.zeros(hu.shape[:2], bool)
        board[np.abs(ii[:, 0] - centre) <= width_mm / 2, rows[0] : rows[1]] = True
        hu[:, :, k][board] = -200.0 + _noise(rng, hu.shape[:2], sigma)[board]
    return Study(f"{base.name}: a positioning board", hu.astype(np.float32), study.spacing)
