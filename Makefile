# 自治体オープンデータ・GISポータル / municipal open data and GIS portal
# `make` lists the targets. Each recipe uses the project's own .venv.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PORTAL := $(BIN)/portal
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: help setup demo serve test lint format bench clean distclean

help: ## この一覧 / this list
	@echo "使い方 / usage: make TARGET"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

setup: ## 足りないものを導入 (apt, .venv) / install what is missing
	@bash scripts/setup.sh

demo: setup ## デモ市を読み込み http://127.0.0.1:8000 で公開 / load the demo city and serve it
	@url="$$($(PORTAL) db start --print-url)" && export DATABASE_URL="$$url" && \
	$(PORTAL) db upgrade && \
	$(PORTAL) demo --no-serve && \
	exec $(PORTAL) serve --host $(HOST) --port $(PORT)

test: ## 全テスト (PostGIS・Chromium 使用) / run the test suite against PostGIS and Chromium
	@bash scripts/setup.sh --with-browser
	@url="$$($(PORTAL) db start --print-url)" && \
	DATABASE_URL="$$url" $(BIN)/pytest $(PYTEST_ARGS)

lint: ## ruff と mypy / ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: ## コード整形 / format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup ## ベンチマーク / benchmarks against peers
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

clean: ## キャッシュ削除 (.data は残す) / remove caches; keeps .data (database, files)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -path ./.data -prune -o \
		-type d -name __pycache__ -exec rm -rf {} +
	@echo "kept .data/ (database, files); 'make distclean' removes it / .data は残しました"

distclean: clean ## 専用DBを停止し .data と .venv を削除 / stop the private cluster, remove .data and .venv
	@if [ -x $(PORTAL) ]; then $(PORTAL) db stop --purge; \
	elif [ -e .data/pg ]; then echo "no $(PORTAL): stop the private cluster yourself first" >&2; exit 1; fi
	rm -rf .data $(VENV)
