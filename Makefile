# Two entry points on a fresh machine: `make demo` and `make test` (each sets up .venv first).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean

$(BIN)/hf-unlearn: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch/torchvision: the releases this machine holds on disk (see README, "Installing torch").
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(BIN)/hf-unlearn

demo: setup
	$(BIN)/hf-unlearn demo

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_unlearn_overhead.py
	$(BIN)/python benchmarks/bench_leaderboard.py
	HF_UNLEARN_GPT2_TOKENIZER=$${HF_UNLEARN_GPT2_TOKENIZER:-../shared/models/gpt2-tokenizer} $(BIN)/python benchmarks/text_scoring.py --threads 1
	HF_UNLEARN_GPT2_TOKENIZER=$${HF_UNLEARN_GPT2_TOKENIZER:-../shared/models/gpt2-tokenizer} $(BIN)/python benchmarks/text_training.py --threads 1
	$(BIN)/python benchmarks/bench_crafting.py --threads 1

clean:
	rm -rf $(VENV) demo_output .pytest_cache
