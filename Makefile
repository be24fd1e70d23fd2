.PHONY: run test
# The two commands (README): run the facility; run every test and check.
run:
	scripts/run.sh
test:
	scripts/test.sh
