# berthwatch: `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

START  ?= 2023-08-01
END    ?= 2023-10-31
AOI    ?= rajin,dunai
SOURCE ?= sentinelhub
SENSOR ?= sentinel-1-grd,sentinel-2-l2a
DATA   ?= data
OUT    ?= out
CLAIM  ?= us-nsc-2023-10-13
DATASETS ?= ../shared/datasets
PYTEST_ARGS ?=
PARAMS ?=
SCHEDULER ?= processes
WORKERS ?= 0
SINCE  ?=
UPDATE_ARGS ?=

RANGE = --start $(START) --end $(END) --aoi $(AOI)
PARAMS_OPT = $(if $(PARAMS),--params $(PARAMS))
ENGINE = --scheduler $(SCHEDULER) --workers $(WORKERS)
# Real data: ENDPOINT=cdse for a free Copernicus Data Space account; DRY_RUN=1 lists scenes only.
ENDPOINT ?= sentinelhub
DRY_RUN ?=
MAX_CLOUD ?=
ORBIT ?=
FORCE ?=
DEBUG_FEATURES ?=
FETCH_OPTS = --endpoint $(ENDPOINT) $(if $(DRY_RUN),--dry-run) $(if $(MAX_CLOUD),--max-cloud $(MAX_CLOUD)) \
             $(if $(ORBIT),--orbit $(ORBIT)) $(if $(FORCE),--force)
DETECT_OPTS = $(if $(FORCE),--force) $(if $(DEBUG_FEATURES),--debug-features)

.PHONY: setup demo test fetch detect report run update validate notebooks bench calibrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/berthwatch demo --out-dir demo-out

# pytest exits 5 when it collects no test; that is not a failure of the code.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

fetch: $(STAMP)
	$(BIN)/berthwatch fetch $(RANGE) --sensor $(SENSOR) --source $(SOURCE) --data-dir $(DATA) $(FETCH_OPTS) \
	  $(if $(filter-out 0,$(WORKERS)),--workers $(WORKERS))

detect: $(STAMP)
	$(BIN)/berthwatch detect $(RANGE) --sensor $(SENSOR) --data-dir $(DATA) --out-dir $(OUT) $(ENGINE) $(PARAMS_OPT) $(DETECT_OPTS)

report: $(STAMP)
	$(BIN)/berthwatch report $(RANGE) --claim $(CLAIM) --out-dir $(OUT) --data-dir $(DATA) $(PARAMS_OPT)

run: $(STAMP)
	$(BIN)/berthwatch run $(RANGE) --sensor $(SENSOR) --source $(SOURCE) --data-dir $(DATA) --out-dir $(OUT) --claim $(CLAIM) $(ENGINE) $(PARAMS_OPT) \
	  $(FETCH_OPTS) $(if $(DEBUG_FEATURES),--debug-features)

# The nightly watch: only what is new since the last processed acquisition (README, "Watching ports every night").
update: $(STAMP)
	$(BIN)/berthwatch update --aoi $(AOI) --sensor $(SENSOR) --source $(SOURCE) --data-dir $(DATA) --out-dir $(OUT) \
	  --claim $(CLAIM) $(if $(SINCE),--since $(SINCE)) $(ENGINE) $(PARAMS_OPT) \
	  --endpoint $(ENDPOINT) $(if $(DRY_RUN),--dry-run) $(if $(MAX_CLOUD),--max-cloud $(MAX_CLOUD)) \
	  $(if $(ORBIT),--orbit $(ORBIT)) $(UPDATE_ARGS)

validate: $(STAMP)
	$(BIN)/berthwatch validate sen2ships $(DATASETS)/sen2ships --out $(OUT)/validate/sen2ships --cross-validate
	$(BIN)/berthwatch validate opensarship $(DATASETS)/opensarship --out $(OUT)/validate/opensarship

notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[notebooks]'
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python bench/run_all.py --out $(OUT)/bench.json

# The report's verdicts and intervals scored on random SIMULATED scenarios (~40 s each; a benchmark, not a test).
SCENARIOS ?= 80
calibrate: $(STAMP)
	$(BIN)/berthwatch calibrate --scenarios $(SCENARIOS) --out-dir $(OUT)/calibration

clean:
	rm -rf $(OUT) demo-out .pytest_cache build *.egg-info
