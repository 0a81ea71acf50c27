# Thin wrapper over tasks.py (which needs only Python 3.11+ and pip). ARGS go to the tool underneath:
#   make lab ARGS='--no-browser --port 8888'
PYTHON ?= python3

.PHONY: test check workbook lab reset setup services-up services-down bench-%
test:
	$(PYTHON) tasks.py test $(ARGS)
check:
	$(PYTHON) tasks.py check $(ARGS)
workbook:
	$(PYTHON) tasks.py workbook $(ARGS)
lab:
	$(PYTHON) tasks.py lab $(ARGS)
reset:
	$(PYTHON) tasks.py reset $(ARGS)
setup:
	$(PYTHON) tasks.py setup
services-up:
	$(PYTHON) tasks.py services up
services-down:
	$(PYTHON) tasks.py services down
bench-%:
	$(PYTHON) tasks.py bench $* $(ARGS)
