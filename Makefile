# make setup: idempotent set-up (apt packages when root, .venv, torch, the package).
# make demo:  set-up, then the main job on the built-in defaults.
# make test:  set-up, then the test suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := fluidsynth fluid-soundfont-gm lilypond
STAMP := $(VENV)/.installed

.PHONY: setup apt demo test lint clean

setup: apt $(STAMP)

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing apt packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "warning: missing apt packages:$$missing (run 'sudo make setup' or install them)"; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/composer demo

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check composer tests evals
	$(BIN)/ruff format --check composer tests evals

clean:
	rm -rf $(VENV) .cache build *.egg-info
