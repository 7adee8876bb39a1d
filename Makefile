# The two commands of the README. Both install what they need first (.ci/setup).
.PHONY: demo test bench lint

demo:            ## install, serve the demo card into pcscd, read it
	./.ci/demo

test:            ## lint + unit tests + hardware-in-the-loop tests through pcscd
	./.ci/test

bench:           ## every benchmark, one table
	./.ci/setup && ./.ci/pcscd && .venv/bin/python bench/run_all.py

lint:
	.venv/bin/ruff check sbcard tests bench
