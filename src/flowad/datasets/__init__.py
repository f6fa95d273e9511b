"""Loaders: every benchmark, test and CLI command gets its data through here."""

from flowad.datasets.adbench import adbench_root, list_adbench, load_adbench, load_npz_folder
from flowad.datasets.builtin import load_breast_cancer_anomaly
from flowad.datasets.defects import DEFECTS, apply_defect
from flowad.datasets.digits import load_fashion_mnist, load_mnist_5k, normal_class_split, one_class_task
from flowad.datasets.image_folder import ImageSet, load_image_folder, write_image_folder
from flowad.datasets.magic import MAGIC_GAMMA_FEATURES, load_magic_gamma, magic_gamma_file
from flowad.datasets.sensor_table import sensor_table
from flowad.datasets.series import (
    REAL_SERIES,
    LabelledSeries,
    load_mitdb,
    load_series,
    load_ucr135,
    load_yahoo,
)
from flowad.datasets.splits import PROTOCOLS, oneclass_split, split, subsample, unsupervised_split
from flowad.datasets.textures import TEXTURES, make_texture_set, write_texture_sets
from flowad.datasets.vehicle import FAULT_KINDS, VEHICLE_CHANNELS, Fault, VehicleSeries, vehicle_sensors

__all__ = [
    "DEFECTS",
    "FAULT_KINDS",
    "MAGIC_GAMMA_FEATURES",
    "PROTOCOLS",
    "REAL_SERIES",
    "TEXTURES",
    "VEHICLE_CHANNELS",
    "Fault",
    "ImageSet",
    "LabelledSeries",
    "VehicleSeries",
    "adbench_root",
    "apply_defect",
    "list_adbench",
    "load_adbench",
    "load_breast_cancer_anomaly",
    "load_fashion_mnist",
    "load_image_folder",
    "load_magic_gamma",
    "load_mitdb",
    "load_mnist_5k",
    "load_npz_folder",
    "load_series",
    "load_ucr135",
    "load_yahoo",
    "magic_gamma_file",
    "make_texture_set",
    "normal_class_split",
    "one_class_task",
    "oneclass_split",
    "sensor_table",
    "split",
    "subsample",
    "unsupervised_split",
    "vehicle_sensors",
    "write_image_folder",
    "write_texture_sets",
]
