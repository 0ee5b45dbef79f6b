# parity: two commands on a fresh machine.
#   make parity   the suite of reference cases, with a report (creates .venv when missing)
#   make test     the tests (unit, cross-framework, properties under the ci profile), without the slow ones
#   make test-all every test, the slow 50-step cross-framework runs too
#   make parity-full  the seeds at their own sizes (tag full), then the real-size transformer (tag realsize, --summary); slow
#   make bench    recording overhead, diff vs the bare programs, memory 50 vs 500 steps, trace bytes, then make parity's
#                 case time in jobs vs one harness (make bench-properties: the property bench)
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.parity-installed
OUT     ?= out

.PHONY: parity parity-full test test-all install bytecode property-thorough bench bench-properties docs clean

install: $(STAMP)

# torch first, pinned: an unpinned torch requirement would resolve to CUDA wheels (GBs).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[torch,tf,data,summaries,reports,test]'
	touch $(STAMP)

# parity's own modules compiled to bytecode (an editable install has none): where PYTHONDONTWRITEBYTECODE=1 is set
# (CI's machines) every process of a run would compile them from source again. A no-op when they are up to date.
bytecode: $(STAMP)
	$(PY) -m compileall -q parity tf_impl torch_impl

parity: $(STAMP) bytecode
	$(VENV)/bin/parity run --all --json $(OUT)/parity-report.json

test: $(STAMP) bytecode
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} $(PY) -m pytest -q -m "not slow" --durations=15

test-all: $(STAMP) bytecode
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} $(PY) -m pytest -q --durations=25

property-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -rA --hypothesis-show-statistics tests/properties

# The heavy tiers `parity run --all` leaves out: every seed case at the seed's own size, then the
# real-size transformer in summary mode (its tensors: ~100 MB a step). Both run; the worse exit code wins.
parity-full: $(STAMP) bytecode
	$(VENV)/bin/parity run --tag full --json $(OUT)/parity-full-report.json; s=$$?; \
	$(VENV)/bin/parity run --tag realsize --summary --json $(OUT)/parity-realsize-report.json || s=$$?; exit $$s

bench: $(STAMP) bytecode
	$(PY) -m parity.tools.bench
	$(PY) -m parity.tools.benchparity

bench-properties: $(STAMP)
	$(PY) -m parity.tools.bench properties

docs: $(STAMP)
	$(VENV)/bin/parity docs

clean:
	rm -rf $(OUT) .pytest_cache .hypothesis
