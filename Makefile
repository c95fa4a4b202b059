# Two commands on a fresh machine:  `make setup`  then  `make test`.
# The main job:                      `make tutorial [PROFILE=smoke|quick|full]`
#
# Everything runs inside a virtual environment ($(VENV)); conda users: see environment.yml and pass
# PYTHON=python to use the active interpreter instead.

VENV    ?= .venv
PYTHON  ?= $(VENV)/bin/python
TORCH   ?= 2.13.0
# Extra pip options for torch. On a CPU-only Linux laptop, PyPI's torch wheel is the (multi-GB) CUDA build:
#   make setup TORCH_PIP="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP ?=
# LOCK=1: install the exact versions of requirements/lock.txt (the workshop path; `make lock` regenerates it).
LOCK    ?=
LOCKFILE := requirements/lock.txt
# WHEELHOUSE=DIR: install with no network from a folder made by `make wheelhouse` (implies LOCK=1): the bundle
# folder itself or its wheels/ folder.
WHEELHOUSE ?=
WHEEL_DIR = $(if $(wildcard $(WHEELHOUSE)/wheels/*.whl),$(WHEELHOUSE:/=)/wheels,$(WHEELHOUSE))
PIP_SRC = $(if $(WHEELHOUSE),--no-index --find-links $(WHEEL_DIR))
PIP_REQ := $(if $(or $(LOCK),$(WHEELHOUSE)),-r $(LOCKFILE))
# `make wheelhouse`: where, and for which laptops (empty: this machine's platform and Python).
BUNDLE  ?= /tmp/craft-room
PLATFORM ?=
PYVER   ?=
# nbstripout's options for the git filter (make git-filter): keep cell ids; drop the learner's Python version.
NBSTRIPOUT_ARGS := --keep-id --extra-keys metadata.language_info.version
PROFILE ?= quick
BUILD   ?= build
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: setup git-filter lock wheelhouse check lab test test-fast test-browser tutorial data results lint clean help

help:
	@echo "make setup                 create $(VENV), install torch $(TORCH) first, then craftlib[dev,peers]"
	@echo "make git-filter            strip notebook outputs when git reads them (nbstripout; part of setup)"
	@echo "make lab                   open JupyterLab on notebooks/ (a host can set CRAFTLIB_PROFILE=smoke)"
	@echo "make setup LOCK=1          the same with the exact versions of $(LOCKFILE)"
	@echo "make setup WHEELHOUSE=DIR  the same with no network, from a folder made by make wheelhouse (or DIR/wheels)"
	@echo "make wheelhouse BUNDLE=DIR wheels + CRAFT + ontologies + SHA256SUMS for an offline room"
	@echo "make check                 is this machine ready? (python -m craftlib doctor)"
	@echo "make test                  unit tests + every notebook with papermill (smoke profile)"
	@echo "make test-fast             unit tests only"
	@echo "make test-browser          every notebook in JupyterLab + headless Chromium (needs .[browser], chromium)"
	@echo "make tutorial PROFILE=...  execute all notebooks into $(BUILD)/ (default PROFILE=quick)"
	@echo "make data                  build the CRAFT dataset (python -m craftlib data)"
	@echo "make results [PUBLISH=...] copy measured runs (models/<run>, runs/<name>) into results/, then"
	@echo "                           regenerate the README results table from results/*/metrics.json"

$(VENV)/bin/python:
	python3 -m venv $(VENV)

# torch first: a plain `torch` requirement on a machine without it pulls the CUDA build (GBs).
setup: $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/bin/python)
	$(PYTHON) -m pip install $(PIP_SRC) --upgrade pip
	$(PYTHON) -m pip install $(PIP_SRC) $(TORCH_PIP) "torch==$(TORCH)"
	$(PYTHON) -m pip install $(PIP_SRC) $(PIP_REQ) -e ".[dev,peers]"
	@$(MAKE) --no-print-directory git-filter PYTHON="$(PYTHON)"

# Running a notebook writes its outputs into the .ipynb file (JupyterLab autosaves). The clean filter below makes
# git read every notebook without them (.gitattributes: *.ipynb filter=nbstripout): `git diff` stays empty and
# nothing a learner ran can be committed by accident; the file on disk keeps the outputs for the learner. (`git
# status` would still list a notebook whose size changed until `git add` refreshes the index, git's size shortcut:
# `make lab` starts JupyterLab with jupyter_server_config.py, whose post-save hook does that refresh.)
# This checkout's git config only; outside a git checkout it does nothing.
git-filter:
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  py=$$($(PYTHON) -c 'import sys; print(sys.executable)') && \
	  git config filter.nbstripout.clean "'$$py' -m nbstripout $(NBSTRIPOUT_ARGS)" && \
	  git config filter.nbstripout.smudge cat && \
	  echo "git filter nbstripout: notebook outputs are stripped when git reads a notebook"; \
	else echo "not a git checkout: no notebook filter needed"; fi

# The lock file of exact versions (needs `pip install uv`); torch's CUDA-only dependencies are left to
# `make setup TORCH_PIP=...` (see requirements/uv.toml).
lock:
	uv pip compile --config-file requirements/uv.toml pyproject.toml requirements/torch.in --extra dev \
	  --extra peers --universal --python-version 3.11 --no-emit-package craftlib -o $(LOCKFILE)

# An offline room: wheels of every locked dependency + CRAFT + ontology files + SHA256SUMS in $(BUNDLE).
#   make wheelhouse BUNDLE=/media/usb/craft-room PLATFORM=manylinux_2_28_x86_64 PYVER=3.11 \
#        TORCH_PIP="--index-url https://download.pytorch.org/whl/cpu"
wheelhouse:
	$(PYTHON) -m craftlib bundle $(BUNDLE) $(foreach p,$(PLATFORM),--platform $(p)) \
	  $(if $(PYVER),--python-version $(PYVER)) --torch-pip "$(TORCH_PIP)"

check:
	$(PYTHON) -m craftlib doctor

lab:
	$(PYTHON) -m jupyterlab --ServerApp.root_dir=notebooks --config="$(CURDIR)/jupyter_server_config.py"

test:
	$(PYTHON) -m pytest -q -m "not browser"

test-fast:
	$(PYTHON) -m pytest -q -m "not notebooks and not browser"

# prints where the screenshots are (-s)
test-browser:
	$(PYTHON) -m pytest -q -s -m browser

data:
	$(PYTHON) -m craftlib data

# `papermill NB OUT -k python3 --cwd notebooks -p PROFILE P`, with the kernel's own log at ERROR: ipykernel warns
# at every start that its local TCP sockets are not encrypted, which a learner can do nothing about.
PAPERMILL = import sys, papermill as pm; pm.execute_notebook(sys.argv[1], sys.argv[2], kernel_name='python3', \
  cwd='notebooks', parameters={'PROFILE': sys.argv[3]}, extra_arguments=['--IPKernelApp.log_level=ERROR'])

tutorial:
	@mkdir -p $(BUILD)
	@for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb); \
	  echo "== $$name (PROFILE=$(PROFILE))"; \
	  $(PYTHON) -c "$(PAPERMILL)" $$nb $(BUILD)/$$name $(PROFILE) || exit 1; \
	  $(PYTHON) -m jupyter nbconvert --to html --log-level WARN $(BUILD)/$$name || exit 1; \
	done

# committing measured results is this explicit step: make results PUBLISH="two-step-minilm-quick-drop0-case-viterbi peers-quick"
results:
	$(if $(PUBLISH),$(PYTHON) -m craftlib publish $(PUBLISH))
	$(PYTHON) -m craftlib results --readme README.md --results-dir results

lint:
	$(PYTHON) -m ruff check craftlib tests benchmarks

clean:
	rm -rf $(BUILD) .pytest_cache
