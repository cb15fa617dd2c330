# bevjepa: `make demo` and `make test` are all a fresh machine needs (both create .venv and install first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# spconv build: `cpu` here, `cu120` on CUDA machines (make install SPCONV=cu120).
SPCONV ?= cpu
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed-$(SPCONV)
DEMO_DIR := outputs/demo

.PHONY: install demo test test-all lint format bench clean

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

demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/bevjepa fit --config configs/supervised/real_frame_box_occupancy.yaml \
		--trainer.default_root_dir $(DEMO_DIR) --trainer.enable_progress_bar false
	$(BIN)/bevjepa validate --config configs/supervised/real_frame_box_occupancy.yaml \
		--trainer.default_root_dir $(DEMO_DIR) \
		--ckpt_path "$$(ls $(DEMO_DIR)/lightning_logs/version_0/checkpoints/*.ckpt)"
	$(BIN)/python tools/visualize.py frame --frame-dir ../shared/data/nuscenes_real_frame \
		--ckpt "$$(ls $(DEMO_DIR)/lightning_logs/version_0/checkpoints/*.ckpt)" --out $(DEMO_DIR)/real_frame_bev.png
	@echo "demo done: metrics above; BEV picture in $(DEMO_DIR)/real_frame_bev.png"

test: install
	$(BIN)/python -m pytest -q

# Everything, slow tests included (GPU tests still skip without CUDA).
test-all: install
	$(BIN)/python -m pytest -q -m "not gpu"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	@for bench in benchmarks/bench_*.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
