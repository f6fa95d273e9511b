"""Imaging atmospheric Cherenkov telescope (IACT) images: camera geometries, a toy event simulator,
tail-cuts cleaning and Hillas / MAGIC image parameters, all batched NumPy (validated against ctapipe).

Typical use::

    camera = load_camera("magic")
    images, labels, truth = simulate_events(camera, 1000, random_state=0)
    masks = tailcuts_clean(camera, images, picture_thresh=6, boundary_thresh=3)
    table = hillas_table(camera.pix_x, camera.pix_y, np.where(masks, images, 0), camera.pix_area)
"""

from flowad.iact.camera import (
    CameraGeometry,
    camera_file,
    hexagonal_camera,
    load_camera,
    neighbor_matrix,
    rectangular_camera,
)
from flowad.iact.cleaning import tailcuts_clean
from flowad.iact.features import MAGIC_KEYS, hillas_table, magic_features
from flowad.iact.hillas import HILLAS_KEYS, MIN_WIDTH_RATIO, hillas_parameters
from flowad.iact.pipeline import GammaHadronSeparator, HillasFeatures
from flowad.iact.simulate import LABEL_NAMES, TRUTH_KEYS, load_events, save_events, simulate_events

__all__ = [
    "HILLAS_KEYS",
    "LABEL_NAMES",
    "MAGIC_KEYS",
    "MIN_WIDTH_RATIO",
    "TRUTH_KEYS",
    "CameraGeometry",
    "GammaHadronSeparator",
    "HillasFeatures",
    "camera_file",
    "hexagonal_camera",
    "hillas_parameters",
    "hillas_table",
    "load_camera",
    "load_events",
    "magic_features",
    "neighbor_matrix",
    "rectangular_camera",
    "save_events",
    "simulate_events",
    "tailcuts_clean",
]
