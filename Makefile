.PHONY: run test

# Lens on the embedded default (SQLite, in-process tasks, demo data), server up.
run:
	scripts/run

# The whole test suite on SQLite and PostgreSQL.
test:
	scripts/test
