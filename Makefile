# Overfitting and regularisation study toolkit. `make help` lists the targets.
PYTHON_BASE ?= python3
VENV        ?= .venv
PYTHON      := $(VENV)/bin/python
SPACE       ?= search_spaces/depth.yaml
STUDY       ?=
DATASET     ?=
TUNER       ?=
TRIALS      ?=
EPOCHS      ?=
SEED        ?=
SEEDS       ?=
DATA_DIR    ?=
WORKERS     ?=
HOST        ?=
PORT        ?=
export TF_CPP_MIN_LOG_LEVEL ?= 3

# Optional command-line overrides, passed only when the variable is set.
RUN_FLAGS = $(if $(DATASET),--dataset $(DATASET)) $(if $(TUNER),--tuner $(TUNER)) $(if $(TRIALS),--trials $(TRIALS)) \
            $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(SEED),--seed $(SEED)) $(if $(SEEDS),--seeds $(SEEDS)) \
            $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(WORKERS),--workers $(WORKERS)) \
            $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

.DEFAULT_GOAL := help
.PHONY: help venv demo study worker study-depth study-dropout study-weight-decay study-explanations report report-index bench calibration test data-mitdb data-cinc2017 clean

help: ## List the targets and the variables they take
	@echo "Targets:"
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-20s %s\n", $$1, $$2}'
	@echo "Variables: SPACE=<yaml> DATASET=<name> TUNER=quasi_random|random|bayesian|hyperband|grid TRIALS=<per cell>"
	@echo "           EPOCHS=<n> SEED=<n> SEEDS=<repeat seeds> STUDY=<name> DATA_DIR=<dir>"
	@echo "           WORKERS=<n> (a chief and n worker processes; README: many machines) HOST=<address> PORT=<n>"

$(VENV)/.installed: requirements.txt
	$(PYTHON_BASE) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## Create .venv and install the pinned requirements

demo: venv ## Run the small depth study on synthetic ECG strips and write reports/demo/
	$(PYTHON) -m study run search_spaces/demo.yaml --overwrite $(RUN_FLAGS)
	$(PYTHON) -m study report demo

study: venv ## Run (or resume) the study of SPACE and write its report
	$(PYTHON) -m study run $(SPACE) --name $(or $(STUDY),$(basename $(notdir $(SPACE)))) $(RUN_FLAGS)
	$(PYTHON) -m study report $(or $(STUDY),$(basename $(notdir $(SPACE))))

worker: venv ## Join a running study's chief from this machine (STUDY=<name>; runs/ must be the chief's, e.g. shared)
	@test -n "$(STUDY)" || { echo "make worker needs STUDY=<name>, e.g. make worker STUDY=depth" >&2; exit 2; }
	$(PYTHON) -m study worker $(STUDY) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

study-depth: ## Depth study: do deeper LSTMs overfit faster than CNNs? (SPACE= to swap the space)
	$(MAKE) study SPACE=$(SPACE)

study-dropout: ## Dropout study: how much of the gap does dropout close, per architecture and depth? (~25 min)
	$(MAKE) study SPACE=search_spaces/dropout.yaml

study-weight-decay: ## Weight-decay study: AdamW against an L2 penalty, two strengths, per architecture and depth (~25 min)
	$(MAKE) study SPACE=search_spaces/weight_decay.yaml

EXPLANATION_SPACES ?= gradients clipping parameters gating receptive_field data_size label_noise long_memory

study-explanations: ## Why? Run the eight explanation studies of the five explanations (search_spaces/explanations/) and build their reports (~4 h on 2 cores)
	@for space in $(EXPLANATION_SPACES); do \
	  $(MAKE) --no-print-directory study SPACE=search_spaces/explanations/$$space.yaml || exit $$?; \
	done

report: venv ## Rebuild reports/$(STUDY)/ from runs/$(STUDY)/ (STUDY=<name>)
	@test -n "$(STUDY)" || { echo "make report needs STUDY=<name>, e.g. make report STUDY=demo" >&2; exit 2; }
	$(PYTHON) -m study report $(STUDY)

report-index: venv ## Rebuild reports/index.html and reports/index.md: every study's question, claims and verdicts
	$(PYTHON) -m study.index_report reports

bench: venv ## Benchmarks: recorded trial vs bare fit, demo time, report rebuild, dataset builds
	$(PYTHON) -m study.bench

calibration: venv ## Error rate and power of the verdict's decision rule on simulated studies (docs/statistics.md)
	$(PYTHON) -m study.statistics.simulation

test: venv ## Run the test suite
	$(PYTHON) -m pytest -q tests

data-mitdb: venv ## Download the MIT-BIH Arrhythmia Database from PhysioNet into DATA_DIR (default data/)
	$(PYTHON) -m study.download mitdb $(if $(DATA_DIR),--data-dir $(DATA_DIR))

data-cinc2017: venv ## Download the PhysioNet/CinC 2017 training set into DATA_DIR (default data/)
	$(PYTHON) -m study.download cinc2017 $(if $(DATA_DIR),--data-dir $(DATA_DIR))

clean: ## Remove runs/ and generated reports (keeps .venv)
	rm -rf runs reports/*/
