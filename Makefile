# clickagg: one command to set up + run the demo, one to run every test.
PY311    ?= python3.11
VENV     := .venv
FLINKENV := .venv-flink
PY       := $(VENV)/bin/python
FLINKPY  := $(FLINKENV)/bin/python
GLUEENV  := .venv-glue
GLUEPY   := $(GLUEENV)/bin/python
# Managed Flink application zip (job + connector uber-jar), built by Maven: see functions/aggregate/pom.xml
FLINK_APP := functions/aggregate/target/clickagg-flink-app.zip
export PYTHONPATH := $(CURDIR):$(CURDIR)/functions
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup demo test test-main test-flink test-glue soak synth bench clean up

setup: $(VENV)/.done $(VENV)/.sdk-done $(FLINKENV)/.done $(GLUEENV)/.done node_modules/.done web/dist/index.html \
       sdk/js/dist/clickagg.min.js $(FLINK_APP)

$(VENV)/.done: requirements/lambda.txt requirements/infra.txt requirements/dev.txt
	$(PY311) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.txt
	touch $@

# the Python SDK, as a user installs it (a wheel built by hatchling; it carries
# functions/common/click_token.py, so a change there reinstalls it): the load generator uses it
$(VENV)/.sdk-done: $(VENV)/.done sdk/python/pyproject.toml sdk/python/README.md $(wildcard sdk/python/clickagg_sdk/*.py) functions/common/click_token.py
	$(PY) -m pip install -q --no-deps --force-reinstall ./sdk/python
	touch $@

$(FLINKENV)/.done: requirements/flink.txt
	$(PY311) -m venv $(FLINKENV)
	$(FLINKPY) -m pip install -q --upgrade pip
	$(FLINKPY) -m pip install -q -r requirements/flink.txt
	touch $@

# glue-libs.txt: awsglue for the Glue entry point's tests only, beside the venv, not in it (see the file)
$(GLUEENV)/.done: requirements/glue.txt requirements/glue-libs.txt
	$(PY311) -m venv $(GLUEENV)
	$(GLUEPY) -m pip install -q --upgrade pip
	$(GLUEPY) -m pip install -q -r requirements/glue.txt
	$(GLUEPY) -m pip install -q --no-deps --upgrade --target $(GLUEENV)/awsglue-libs -r requirements/glue-libs.txt
	touch $@

$(FLINK_APP): functions/aggregate/pom.xml functions/aggregate/assembly.xml $(wildcard functions/aggregate/__init__.py functions/aggregate/job/*.py functions/common/*.py) $(shell find functions/aggregate/src -type f) $(wildcard functions/common/ivt_data/*)
	# flock: two builds at once (two make runs) left a truncated zip; the second now waits
	flock functions/aggregate/.build.lock mvn -q -B -f functions/aggregate/pom.xml clean package  # clean: no class of a deleted source is shaded in

node_modules/.done: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/node_modules/.done: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	touch $@

sdk/js/node_modules/.done: sdk/js/package.json sdk/js/package-lock.json
	npm ci --prefix sdk/js --no-audit --no-fund --loglevel=error
	touch $@

# the browser SDK's bundles (ESM + script tag) and types; the build fails above 5 KiB gzipped
sdk/js/dist/clickagg.min.js: sdk/js/node_modules/.done sdk/js/build.mjs sdk/js/tsconfig.json $(wildcard sdk/js/src/*)
	node sdk/js/build.mjs

web/dist/index.html: web/node_modules/.done web/build.mjs $(wildcard web/src/*)
	node web/build.mjs

demo: setup
	$(PY) -m local demo $(if $(KEEP),--keep,)

up: setup
	$(PY) -m local up

test: setup test-main test-flink test-glue

# two xdist workers (both cores; modules as units, the Flink-stack ones together:
# tests/xdist_scheduling.py); the slowest tests listed: the whole command must stay within its
# time budget (README, Tests)
test-main:
	$(PY) -m pytest -n 2 --dist loadfile --durations=15

# per-test limits (pytest-timeout, as pytest.ini's 600 s for test-main): above the longest test's
# own waits (Flink restart runs; the billing bench's 900 s subprocess limit), so those report first
test-flink:
	$(FLINKPY) -m pytest tests/flink -n 2 --dist loadfile -p no:cacheprovider -o addopts="" -o timeout=1200 --durations=10

test-glue:
	$(GLUEPY) -m pytest tests/glue -n 2 --dist loadfile -p no:cacheprovider -o addopts="" -o timeout=1200 --durations=10

soak: setup
	CLICKAGG_SOAK=1 $(PY) -m pytest tests/faults -s

synth: setup
	npx cdk synth -q --no-notices

bench: setup
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) $(FLINKENV) $(GLUEENV) node_modules cdk.out .local web/node_modules web/dist sdk/js/node_modules sdk/js/dist functions/aggregate/target
