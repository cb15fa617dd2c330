# bevjepa: `make demo` and `make test` are all a fresh machine needs (both create .venv and install first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# spconv build: `cpu` here, `cu120` on CUDA machines (make install SPCONV=cu120).
SPCONV ?= cpu
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed-$(SPCONV)
DEMO_DIR := outputs/demo
DEMO_DATA := data/synthetic_demo
BENCH_DATA := data/synthetic_nuscenes

.PHONY: install demo test test-all test-export lint format bench clean

install: $(STAMP)

# Reinstalls only when the project's metadata changes; a second `make test` reuses .venv as it is.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: left to the resolver, pip would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e ".[$(SPCONV),dev]" torch==$(TORCH_VERSION)
	rm -f $(VENV)/.installed-*
	touch $@

# The synthetic demo dataset is generated once (about 3 minutes on 2 cores) and reused. Then: the real-frame
# slice, JEPA pretraining with its report (loss curve, collapse monitors), the MAE-style baseline at the same
# number of steps, and the probe suite's table (JEPA vs random init vs MAE). One torch thread per process: the
# DataLoader worker takes the second core (two threads per process are several times slower on a busy machine).
JEPA_RUN := $(DEMO_DIR)/jepa/lightning_logs/version_0
MAE_RUN := $(DEMO_DIR)/mae/lightning_logs/version_0
demo: export OMP_NUM_THREADS = 1
demo: install
	test -f $(DEMO_DATA)/v1.0-demo/sample.json || $(BIN)/python tools/make_synthetic_nuscenes.py \
		--preset demo --out $(DEMO_DATA) --seed 0 --overwrite
	rm -rf $(DEMO_DIR)
	$(BIN)/python tools/visualize.py sample --dataroot $(DEMO_DATA) --version v1.0-demo --split val --index 4 \
		--voxel-size 0.2 0.2 0.2 --out $(DEMO_DIR)/synthetic_sample_bev.png
	$(BIN)/bevjepa fit --config configs/supervised/real_frame_box_occupancy.yaml \
		--trainer.default_root_dir $(DEMO_DIR)/real_frame --trainer.enable_progress_bar false
	$(BIN)/python tools/visualize.py frame --frame-dir ../shared/data/nuscenes_real_frame \
		--ckpt "$$(ls $(DEMO_DIR)/real_frame/lightning_logs/version_0/checkpoints/*.ckpt)" \
		--out $(DEMO_DIR)/real_frame_bev.png
	$(BIN)/bevjepa fit --config configs/pretrain/synthetic_cpu.yaml \
		--data.init_args.dataroot $(DEMO_DATA) --trainer.default_root_dir $(DEMO_DIR)/jepa \
		--trainer.enable_progress_bar false
	$(BIN)/python -m bevjepa.jepa.training_report $(JEPA_RUN)
	$(BIN)/bevjepa fit --config configs/pretrain/synthetic_cpu_mae.yaml \
		--data.init_args.dataroot $(DEMO_DATA) --trainer.default_root_dir $(DEMO_DIR)/mae \
		--trainer.enable_progress_bar false
	$(BIN)/python tools/probe.py --config configs/probe/synthetic_cpu.yaml \
		--ckpt "$$(ls $(JEPA_RUN)/checkpoints/*.ckpt)" \
		--baselines "random,mae=$$(ls $(MAE_RUN)/checkpoints/*.ckpt)" --out $(DEMO_DIR)/probes
	@echo "demo done: tables above; pictures in $(DEMO_DIR)/ (synthetic_sample_bev.png, real_frame_bev.png,"
	@echo "  jepa/lightning_logs/version_0/bev_pictures/, probes/pictures/); results in $(DEMO_DIR)/probes/results.md"

test: install
	$(BIN)/python -m pytest -q

# Everything, slow tests included (GPU tests still skip without CUDA).
test-all: install
	$(BIN)/python -m pytest -q -m "not gpu"

# The export checked by the real mmdetection3d (tests/export, slow): a venv of its own, built once (mmcv 2.1.0
# compiles from source with its operators, 10+ minutes on 2 cores). BEVJEPA_OPENPCDET_ROOT=<checkout> adds OpenPCDet.
EXPORT_VENV ?= build/venv-export
EXPORT_STAMP := $(EXPORT_VENV)/.installed-mmdet3d

$(EXPORT_STAMP): pyproject.toml
	test -x $(EXPORT_VENV)/bin/python || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/python -m pip install --quiet torch==$(TORCH_VERSION) "numpy<2" "setuptools>=77,<81" wheel ninja
	# Without --no-build-isolation pip silently builds mmcv without the operators mmdet3d needs.
	MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 $(EXPORT_VENV)/bin/python -m pip install --quiet --no-build-isolation mmcv==2.1.0
	$(EXPORT_VENV)/bin/python -m pip install --quiet mmengine==0.10.7 mmdet==3.3.0 mmdet3d==1.4.0 "numpy<2"
	$(EXPORT_VENV)/bin/python -m pip install --quiet -e ".[$(SPCONV),dev]" torch==$(TORCH_VERSION) "numpy<2"
	touch $@

test-export: $(EXPORT_STAMP)
	$(EXPORT_VENV)/bin/python -m pytest -q -m slow tests/export

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	test -f $(BENCH_DATA)/v1.0-nuscenes/sample.json || $(BIN)/python tools/make_synthetic_nuscenes.py \
		--preset nuscenes --out $(BENCH_DATA) --seed 0 --overwrite
	$(BIN)/python benchmarks/bench_synthetic.py
	$(BIN)/python benchmarks/bench_fusion.py --dataroot $(BENCH_DATA) --version v1.0-nuscenes
	$(BIN)/python benchmarks/bench_data.py --dataroot $(BENCH_DATA) --version v1.0-nuscenes
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
