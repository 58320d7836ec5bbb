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
        angle = np.arctan2(y - cy, x - cx)
        streak = np.zeros_like(distance)
        for n in range(streaks):
            theta = np.pi * n / streaks + rng.uniform(-0.05, 0.05)
            across = np.abs(np.sin(angle - theta)) * distance
            sign = 1.0 if n % 2 == 0 else -1.0
            streak += sign * 600.0 * np.exp(-((across / 1.5) ** 2)) * np.exp(-distance / 120.0)
        slice_hu = hu[:, :, k]
        slice_hu += (streak * body[:, :, k]).astype(np.float32)
        slice_hu[distance <= radius] = 3071.0
    return Study(f"{base.name}: metal streaks", hu, base.spacing)


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
