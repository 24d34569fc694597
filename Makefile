# The two commands of the README. Everything else (packages, virtualenv, Go builds, the sandbox) happens
# inside them; see scripts/setup.sh.
VENV ?= .venv
MNOPS := $(VENV)/bin/mnops
PYTEST := $(VENV)/bin/python -m pytest

.PHONY: drills test setup sandbox down

## The main job: the seven drills and the validation suite on the sandbox -> report.html, junit.xml
drills: sandbox
	$(PYTEST) suites -m "drill or validation" --mnops-sandbox \
		--html=report.html --self-contained-html --junitxml=junit.xml --mnops-report-json=drills.json

## The project's own tests: unit tests, then integration tests on the real sandbox
test: sandbox
	$(PYTEST) tests --mnops-sandbox

setup:
	bash scripts/setup.sh

sandbox: setup
	$(MNOPS) sandbox up

down:
	$(MNOPS) sandbox down
