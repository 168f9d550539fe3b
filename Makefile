# diffmine: two commands on a fresh machine with only Python 3.11 and pip.
#   make demo   the paper's five experiments (Cars, Faces, Geo, Places, X-ray) on planted stand-ins, diffmine-base finetuned on the CPU
#   make cli-demo   the same pipeline step by step with the `diffmine` command, on a 4-label planted set
#   make test   notebooks (nbdev_test) + pytest + "library in sync with nbs/, notebooks clean, README current" (< 10 min)
#   make test-slow   the end-to-end runs marked slow: kills and reruns, an 8000 px image, 2-process launches (CI runs it too)
#   make base-model   pretrain diffmine-base (models/diffmine-base, committed) from nothing: about 1 hour on 2 CPU cores
#   make lab    JupyterLab on nbs/
#   make docs   the documentation site: the notebooks executed at smoke size + the API reference (_docs/html)
#   make figures PROFILE=paper   the experiment notebooks on the real datasets (see data/README.md)
#   diffmine reproduce --only fashion_mnist   the pipeline on real images, Fashion-MNIST (needs `make fashion-mnist`), not part of make demo
#   make benchmark-quality   every ground-truth metric, base vs finetuned, on the stand-ins + Fashion-MNIST on all 10,000 test images
#                            (about 5 hours on 2 CPU cores, 2.8 h the stand-ins: five 3,200-step finetunes of 25-28 min; `diffmine reproduce --only benchmark_quality --set datasets=none`
#                            runs only Fashion-MNIST)
#   make benchmark-photos    mining real images (emoji on photographs) through the CLI, base vs finetuned (41-75 min)
#   make benchmark-speed     typicality against the bare UNet (CPU small model; GPU SD-1.5-sized UNet, CUDA only),
#                            cost versus N against the Doersch et al. baseline (about an hour on 2 CPU cores; SPEED=overhead for minutes)
#   make benchmark-adaptive  cheap typicality estimators against a 1000-draw reference on 900 planted images (about 85 min)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# torch is installed first, from this spec, unless the venv can already import a torch (GPU users: make TORCH_SPEC=torch).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.diffmine-installed
DEMO_DATA ?= data/demo-planted-128
DEMO_RUN ?= runs/demo-128
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: lint base-model base-model-sources install demo cli-demo test test-slow test-all lab sync check-sync figures clean-demo fashion-mnist benchmark-quality benchmark-photos benchmark-speed benchmark-adaptive docs docs-deps
PROFILE ?= demo

install: $(STAMP)

$(STAMP): settings.ini setup.py
	@test -x $(PY) || { echo "== creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@$(PY) -c "import torch" 2>/dev/null || { echo "== installing $(TORCH_SPEC)"; $(PY) -m pip install -q "$(TORCH_SPEC)" 2> >(grep -v "is ignored: it is neither" >&2); }
	@echo "== installing diffmine and its dependencies (pip install -e .[dev])"
	@$(PY) -m pip install -q -e ".[dev]" 2> >(grep -v "is ignored: it is neither" >&2)
	@$(PY) -m ipykernel install --sys-prefix --name diffmine --display-name "diffmine (Python 3)" >/dev/null
	@$(PY) -m pip check
	@# headless Chromium for the gallery's browser test (Debian package; only when we may install system packages)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && { echo "== installing chromium (apt-get)"; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "== note: chromium not installed (not root): the gallery browser test will be skipped"; }
	@# a CJK font for figure labels such as 日本 (Debian package; without it such characters are drawn as code points)
	@test -e /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { echo "== installing fonts-droid-fallback (apt-get)"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-droid-fallback >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-droid-fallback >/dev/null; }; } || \
	  echo "== note: fonts-droid-fallback not installed (not root): CJK labels in figures are drawn as code points"; }
	@touch $(STAMP)

# The main job: every experiment notebook of the paper through papermill, profile demo (figures/<experiment>/).
demo: install
	$(BIN)/diffmine reproduce --profile demo

# The pipeline one command at a time; each step is a command a user can run on their own data (see README).
cli-demo: install
	$(BIN)/diffmine synth planted $(DEMO_DATA) --size 128 --seed 0
	$(BIN)/diffmine finetune $(DEMO_DATA) $(DEMO_RUN)/model --base diffmine-base --resolution 128 --steps 150 --batch-size 16 --lr 1e-3 --cond-dropout 0.1 --checkpoint-every 75 --seed 0 --resume
	$(BIN)/diffmine typicality $(DEMO_RUN)/model $(DEMO_DATA) $(DEMO_RUN)/typicality --draws 20 --limit 120
	$(BIN)/diffmine mine $(DEMO_RUN)/typicality
	$(BIN)/diffmine cluster $(DEMO_RUN)/typicality $(DEMO_RUN)/model --k 8
	$(BIN)/diffmine gallery $(DEMO_RUN)/typicality
	$(BIN)/diffmine evaluate $(DEMO_RUN)/typicality $(DEMO_DATA) --out figures/demo
	$(BIN)/diffmine figures $(DEMO_RUN)/typicality figures/demo --data $(DEMO_DATA)
	@echo "== cli-demo done: figures/demo/*.png, metrics in figures/demo/metrics.json, gallery in $(DEMO_RUN)/typicality/gallery/index.html"

# Two notebooks at a time, one thread each: two torch processes with two threads each on two cores thrash.
# Both run in a scratch folder of their own (TMPDIR): removed when they pass, kept and named when they fail (the notebooks'
# tests alone write 1.2 GB of temporary folders).
test: install check-sync lint
	@scratch=$$(mktemp -d -t diffmine-test.XXXXXX); echo "== scratch: $$scratch"; \
	  if TMPDIR=$$scratch OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 && \
	     TMPDIR=$$scratch $(BIN)/pytest -q -m "not slow" --durations=15 tests; then rm -rf "$$scratch"; \
	  else echo "== tests failed: their scratch is kept in $$scratch"; exit 1; fi

# Undefined names (a NameError a notebook cell's import would hide) and unused imports, in the library and the tests.
lint: install
	$(PY) -m pyflakes $$(ls diffmine/*.py | grep -v _modidx) tests

# The slow tests include pretraining's first steps from nothing, which need the real-image sources of diffmine-base.
test-slow: install fashion-mnist base-model-sources docs-deps
	@scratch=$$(mktemp -d -t diffmine-test-slow.XXXXXX); echo "== scratch: $$scratch"; \
	  if TMPDIR=$$scratch $(BIN)/pytest -q -m slow tests; then rm -rf "$$scratch"; \
	  else echo "== slow tests failed: their scratch is kept in $$scratch"; exit 1; fi

# The documentation site (issue 16): every library and experiment notebook executed at smoke size (cached by source
# hash), plus an API reference of the generated modules, rendered with Sphinx + myst-nb into _docs/html/index.html.
DOCS_SPEC := sphinx==9.0.4 myst-nb==1.4.0 pydata-sphinx-theme==0.24.0
docs-deps: install
	@$(PY) -c "import sphinx, myst_nb, pydata_sphinx_theme" 2>/dev/null || { echo "== installing $(DOCS_SPEC)"; \
	  $(PY) -m pip install -q $(DOCS_SPEC) 2> >(grep -v "is ignored: it is neither" >&2); }
docs: docs-deps
	OMP_NUM_THREADS=1 $(PY) docs/build.py --out _docs

test-all: test test-slow

# Fails when nbdev_export or nbdev_clean would change a file, or README.md is not the render of nbs/index.ipynb.
check-sync: install
	@bash tools/check_sync.sh $(BIN)

# Regenerate the library and README from the notebooks (what a developer runs before committing).
sync: install
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && bash tools/render_readme.sh $(BIN) > README.md

# The paper's experiment notebooks through papermill (profile demo: stand-ins on the CPU; paper: real data, GPU).
figures: install
	$(BIN)/diffmine reproduce --profile $(PROFILE)

# Fashion-MNIST, real images, from the Debian package (installed with apt-get when run as root).
FASHION_DIR := /usr/share/datasets/fashion-mnist
fashion-mnist:
	@test -f $(FASHION_DIR)/t10k-images-idx3-ubyte.gz || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "== installing dataset-fashion-mnist (apt-get)"; apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  else echo "== Fashion-MNIST is not installed: run 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu); without it the benchmark skips its Fashion-MNIST part and the fashion_mnist experiment cannot run"; fi; }

# diffmine-base, the demo's pretrained latent model, from nothing (models/diffmine-base; resumes from runs/base-model).
# Real images from the registries: the photographs in scikit-image's wheel, npm's Google emoji, Debian's Fashion-MNIST.
BASE_SRC := runs/base-model/sources
SKIMAGE_SPEC := scikit-image==0.26.0
EMOJI_SPEC := emoji-datasource-google@16.0.0
base-model: install fashion-mnist base-model-sources
	OMP_WAIT_POLICY=PASSIVE $(BIN)/diffmine pretrain --work runs/base-model --photos "$$(ls $(BASE_SRC)/scikit_image-0.26.0-*.whl | head -1)" \
	  --emoji $(BASE_SRC)/emoji-datasource-google-16.0.0.tgz

base-model-sources: install
	@mkdir -p $(BASE_SRC)
	@ls $(BASE_SRC)/scikit_image-0.26.0-*.whl >/dev/null 2>&1 || $(PY) -m pip download -q --no-deps --only-binary=:all: "$(SKIMAGE_SPEC)" -d $(BASE_SRC)
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; } || { echo "== npm is needed for the emoji images"; exit 1; }
	@test -f $(BASE_SRC)/emoji-datasource-google-16.0.0.tgz || (cd $(BASE_SRC) && npm pack -q $(EMOJI_SPEC) >/dev/null)

# The quality benchmark (not a timed test): the notebook nbs/benchmarks/quality.ipynb writes figures/benchmark/quality.json
# and quality.md, with figures/benchmark/notes.md appended when it exists. Resumes from runs/benchmark.
benchmark-quality: install fashion-mnist
	$(BIN)/diffmine reproduce --only benchmark_quality

# Mining real images (emoji planted on photographs) through the diffmine CLI: the notebook nbs/benchmarks/photos.ipynb
# writes figures/benchmark/photos.json and photos.md, with figures/benchmark/photos_notes.md appended when it exists
# (41 min on 2 CPU cores on 2026-12-05, 38 of them the finetune; 75 min on 2026-12-03). Resumes from runs/benchmark-photos.
benchmark-photos: install base-model-sources
	$(BIN)/diffmine reproduce --only benchmark_photos

# The speed benchmark: the notebook nbs/benchmarks/speed.ipynb writes figures/benchmark/speed.json, speed.md and plots
# (sections: SPEED=overhead,gpu,scaling). Run it alone on the machine: other processes change the times. Without a CUDA
# device the gpu section records "not measured".
SPEED ?= overhead,gpu,scaling
benchmark-speed: install
	$(BIN)/diffmine reproduce --only benchmark_speed --set sections=$(SPEED)

# Typicality estimators (uniform, stratified, pruned, the adaptive path) against a 1000-draw reference on 900 planted
# images: the notebook nbs/benchmarks/adaptive.ipynb writes figures/benchmark/adaptive.{json,md,png} (about 85 min on
# 2 CPU cores; resumes from runs/benchmark-estimators)
benchmark-adaptive: install
	$(BIN)/diffmine reproduce --only benchmark_adaptive

lab: install
	$(BIN)/jupyter lab nbs

clean-demo:
	rm -rf $(DEMO_DATA) $(DEMO_RUN) data/standins runs/experiments
