# CNN interpretability workbench. `make run` starts the app, `make test` runs the suite;
# both set up whatever is missing first.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8501
export OMP_WAIT_POLICY := PASSIVE
export TORCH_FORCE_WEIGHTS_ONLY_LOAD := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup zoo run test test-fast bench report lint browser clean security fuzz fuzz-smoke

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -r requirements.txt
	# zennit 1.0.0 declares Requires-Python >=3.11.11 (we run 3.11.7): see requirements.txt and README "Pinned versions"
	$(BIN)/pip install -q --no-deps --ignore-requires-python zennit==1.0.0
	$(BIN)/pip install -q -e . --no-deps
	$(BIN)/pip install -q -e examples/wb_example_plugin --no-deps
	# spkit only for the real Emotiv recording inside its wheel (read by workbench/io/numpy_pickle.py, an
	# allow-list unpickler; spkit is never imported): --no-deps skips its seaborn/h5py/phyaat chain
	$(BIN)/pip install -q --no-deps spkit==0.0.9.7
	# the optional Ray executor of `workbench sweep` (pyproject extra "ray"), so tests/sweep covers it
	$(BIN)/pip install -q ray==2.60.0
	touch $@

setup: $(VENV)/.installed

# Debian's chromium for the real-browser test and static figure export (never `playwright install`).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

zoo: setup
	$(BIN)/python -m models.train

run: setup zoo
	$(BIN)/streamlit run workbench/app.py --server.address $(HOST) --server.port $(PORT) \
	  --server.headless true --browser.gatherUsageStats false

test: setup zoo browser
	$(BIN)/python -m pytest -q --timeout 900

test-fast: setup zoo
	$(BIN)/python -m pytest -q -m "not slow and not e2e"

bench: setup zoo
	$(BIN)/python -m bench.run --out bench/results.json

report: setup zoo
	$(BIN)/workbench run attribution --model digits_vgg.sk --data digits:test:4 --out artifacts/demo --force
	$(BIN)/workbench report artifacts/demo -o artifacts/report.html

# Security rows of the reliability plan (RELIABILITY.md items 4, 5, 8, 18, 19) plus pip-audit.
security: setup browser
	$(BIN)/python -m pytest -q tests/reliability/test_malicious.py tests/reliability/test_corpus.py \
	  tests/reliability/test_xss.py tests/reliability/test_architecture.py
	$(BIN)/pip install -q pip-audit
	$(BIN)/pip-audit -r requirements.txt -r <(echo zennit==1.0.0) --no-deps --disable-pip --progress-spinner off \
	  $$(sed -n 's/^\([A-Z]*-[0-9A-Za-z-]*\).*/--ignore-vuln \1/p' .ci/audit-waivers.txt)

FUZZ_SECONDS ?= 300
fuzz: setup
	$(BIN)/pip install -q atheris
	for t in image safetensors checkpoint report; do \
	  PYTHONPATH=. $(BIN)/python tests/fuzz/harness.py $$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
	    -artifact_prefix=artifacts/fuzz-$$t- || exit 1; done
	$(BIN)/python -m pytest -q tests/reliability/test_properties.py --hypothesis-seed=0 \
	  -o "addopts=" -p no:cacheprovider

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=30

lint: setup
	$(BIN)/ruff check workbench analyzers models pages tests bench

clean:
	rm -rf artifacts .pytest_cache
