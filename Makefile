# Thin wrapper over tasks.py (which needs only Python 3.11+ and pip).
PYTHON ?= python3

.PHONY: test workbook lab setup services-up services-down bench-%
test:
	$(PYTHON) tasks.py test
workbook:
	$(PYTHON) tasks.py workbook
lab:
	$(PYTHON) tasks.py lab
setup:
	$(PYTHON) tasks.py setup
services-up:
	$(PYTHON) tasks.py services up
services-down:
	$(PYTHON) tasks.py services down
bench-%:
	$(PYTHON) tasks.py bench $*
