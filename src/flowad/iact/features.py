"""MAGIC-style image features on top of the Hillas parameters (the UCI MAGIC gamma telescope set).

The UCI "MAGIC Gamma Telescope" data (Bock, Savicky et al.) describe each event by ten features:
fLength, fWidth, fSize, fConc, fConc1, fAsym, fM3Long, fM3Trans, fAlpha, fDist. Length and width
come from :func:`flowad.iact.hillas.hillas_parameters`; :func:`magic_features` computes the rest:

- ``log10_intensity`` (fSize): ``log10(intensity)``;
- ``conc`` (fConc): charge of the two brightest pixels / intensity;
- ``conc1`` (fConc1): charge of the brightest pixel / intensity (ctapipe's ``concentration.pixel``);
- ``asym`` (fAsym): distance from the cog to the brightest pixel projected on the oriented major axis;
- ``m3long`` (fM3Long): signed cube root of the third central moment along the oriented major axis;
- ``m3trans`` (fM3Trans): signed cube root of the third central moment along the oriented minor axis;
- ``alpha`` (fAlpha): angle between the major axis and the line from the source to the cog, in
  ``[0, pi/2]`` radians (the UCI file uses degrees: ``np.degrees(alpha)``);
- ``dist`` (fDist): distance from the source position to the cog (unit of the pixel coordinates; the
  UCI file uses mm).

*Oriented axis*: the Hillas ``psi`` defines the major axis only modulo pi, so the signs of asym,
m3long and m3trans are fixed here by orienting the major axis *away from the source*
(``e_long = +-(cos psi, sin psi)`` with ``e_long . (cog - source) >= 0``) and taking the minor axis
``e_trans`` as ``e_long`` rotated by +90 degrees. A gamma image with a long tail away from the
source then tends to have m3long > 0 and asym < 0 (about 2/3 and 3/5 of the valid gammas of
:func:`flowad.iact.simulate.simulate_events`; hadrons are even). MARS fixes the sign differently
(in ``MHillasExt``, by the Hillas direction alone), so compare signed features with care.

References: A. M. Hillas, Proc. 19th ICRC (La Jolla 1985), vol. 3, p. 445; R. K. Bock et al.,
"Methods for multidimensional event classification: a case study using images from a Cherenkov
gamma-ray telescope", Nucl. Instrum. Meth. A 516 (2004) 511; UCI Machine Learning Repository,
"MAGIC Gamma Telescope" (Bock and Savicky 2007), doi:10.24432/C52C8B.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from flowad.iact.hillas import check_images, check_pixels, hillas_parameters, iter_entries

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAGIC_KEYS", "hillas_table", "magic_features"]

#: Keys returned by :func:`magic_features`.
MAGIC_KEYS: tuple[str, ...] = ("log10_intensity", "conc", "conc1", "asym", "m3long", "m3trans", "alpha", "dist")


def magic_features(
    pix_x: np.ndarray,
    pix_y: np.ndarray,
    images: np.ndarray,
    hillas: dict[str, np.ndarray],
    source: tuple[float, float] = (0.0, 0.0),
    chunk_size: int = 4096,
) -> dict[str, np.ndarray]:
    """MAGIC/UCI image features (definitions in the module docstring).

    Args:
        pix_x: Pixel x coordinates, shape ``(n_pix,)``.
        pix_y: Pixel y coordinates, shape ``(n_pix,)``.
        images: The cleaned images given to :func:`hillas_parameters`, shape ``(n_images, n_pix)``.
        hillas: Output of :func:`hillas_parameters` for these images (needs ``intensity``, ``x``,
            ``y``, ``length``, ``psi``, ``skewness``, ``valid``, each of shape ``(n_images,)``).
        source: Source position ``(x, y)`` in the units of ``pix_x``.
        chunk_size: Images processed at once.

    Returns:
        Dict of float64 arrays of shape ``(n_images,)`` with the keys :data:`MAGIC_KEYS`; rows that
        are not ``hillas["valid"]`` are 0.
    """
    px, py = check_pixels(pix_x, pix_y)
    imgs = check_images(images, px.size)
    n = imgs.shape[0]
    needed = ("intensity", "x", "y", "length", "psi", "skewness", "valid")
    for key in needed:
        if key not in hillas:
            raise ValueError(f"hillas must contain {key!r} (pass the output of hillas_parameters)")
        if np.shape(hillas[key]) != (n,):
            raise ValueError(f"hillas[{key!r}] must have shape ({n},), got {np.shape(hillas[key])}")
    if len(source) != 2 or not np.all(np.isfinite(source)):
        raise ValueError(f"source must be a finite (x, y) pair, got {source!r}")
    valid = np.asarray(hillas["valid"], dtype=bool)
    intensity = np.where(valid, hillas["intensity"], 1.0)
    cog_x, cog_y = np.asarray(hillas["x"], float), np.asarray(hillas["y"], float)
    psi = np.asarray(hillas["psi"], float)
    cos_psi, sin_psi = np.cos(psi), np.sin(psi)
    rel_x, rel_y = cog_x - float(source[0]), cog_y - float(source[1])
    along = cos_psi * rel_x + sin_psi * rel_y
    across = cos_psi * rel_y - sin_psi * rel_x
    sign = np.where(along < 0, -1.0, 1.0)

    brightest = np.zeros(n)
    two_brightest = np.zeros(n)
    asym = np.zeros(n)
    m3_trans = np.zeros(n)
    for start, stop, rows, cols, w in iter_entries(imgs, chunk_size):
        block = imgs[start:stop]
        k = min(2, px.size)
        top = -np.partition(-block, k - 1, axis=1)[:, :k]
        brightest[start:stop] = top.max(axis=1)
        two_brightest[start:stop] = top.sum(axis=1)
        i_max = np.argmax(block, axis=1)
        sl = slice(start, stop)
        asym[sl] = sign[sl] * ((px[i_max] - cog_x[sl]) * cos_psi[sl] + (py[i_max] - cog_y[sl]) * sin_psi[sl])
        trans = -(px[cols] - cog_x[sl][rows]) * sin_psi[sl][rows] + (py[cols] - cog_y[sl][rows]) * cos_psi[sl][rows]
        m3_trans[sl] = np.bincount(rows, weights=w * trans**3, minlength=stop - start) / intensity[sl]

    length = np.asarray(hillas["length"], float)
    out = {
        "log10_intensity": np.log10(intensity),
        "conc": two_brightest / intensity,
        "conc1": brightest / intensity,
        "asym": asym,
        "m3long": np.cbrt(sign * np.asarray(hillas["skewness"], float)) * length,
        "m3trans": np.cbrt(sign * m3_trans),
        "alpha": np.arctan2(np.abs(across), np.abs(along)),
        "dist": np.hypot(rel_x, rel_y),
    }
    for key in MAGIC_KEYS:
        out[key] = np.where(valid, out[key], 0.0)
    return out


def hillas_table(
    pix_x: np.ndarray,
    pix_y: np.ndarray,
    images: np.ndarray,
    pix_area: np.ndarray | None = None,
    source: tuple[float, float] = (0.0, 0.0),
) -> pd.DataFrame:
    """Hillas parameters and MAGIC features of cleaned images as one ``pandas.DataFrame``.

    Args:
        pix_x: Pixel x coordinates, shape ``(n_pix,)``.
        pix_y: Pixel y coordinates, shape ``(n_pix,)``.
        images: Cleaned images, shape ``(n_images, n_pix)``, 0 outside the cleaning mask.
        pix_area: Optional pixel areas ``(n_pix,)`` (adds the psi and transverse-cog uncertainties).
        source: Source position for alpha, dist and the axis orientation.

    Returns:
        One row per image: the :func:`hillas_parameters` keys (``valid`` included) followed by
        :data:`MAGIC_KEYS`.
    """
    import pandas as pd

    hillas = hillas_parameters(pix_x, pix_y, images, pix_area=pix_area)
    feats = magic_features(pix_x, pix_y, images, hillas, source=source)
    return pd.DataFrame({**hillas, **feats})
