#!/usr/bin/env bash
# One runnable example per shipped harness, on the embedded default model (SmolLM2-135M-Instruct).
# Usage: bash examples/run_examples.sh [LIMIT]     (default 8 examples each; outputs under runs/examples/)
# Token budgets are cut down so that a CPU run takes minutes; drop the --set flags on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-8}
run() { harnessc run "$@" --limit "$LIMIT" --overwrite; }

# plan -> solve (math): the harness, then the bare model on the same problems
run harnesses/plan_solve.harness --data examples/data/math.jsonl --out runs/examples/plan_solve.jsonl \
    --set plan_tokens=256 --set solve_tokens=384
run harnesses/plan_solve.harness --data examples/data/math.jsonl --out runs/examples/plan_solve-student.jsonl \
    --set solve_tokens=384 --student-only
# self-consistency: 4 samples per problem, majority vote
run harnesses/self_consistency.harness --data examples/data/math.jsonl --out runs/examples/self_consistency.jsonl \
    --set samples=4 --set tokens=384
# critique -> revise, at most 2 rounds
run harnesses/critique_revise.harness --data examples/data/math.jsonl --out runs/examples/critique_revise.jsonl \
    --set rounds=2 --set tokens=384
# OPSD baseline: at inference it is the student alone
run harnesses/opsd.harness --data examples/data/math.jsonl --out runs/examples/opsd.jsonl --set student_tokens=384
# draft -> verify (classification) with a memory bank loaded from the other half of the data
mkdir -p runs/examples && tail -n 60 examples/data/classify.jsonl > runs/examples/bank.jsonl
run harnesses/draft_verify.harness --data examples/data/classify.jsonl --out runs/examples/draft_verify.jsonl \
    --bank cases=runs/examples/bank.jsonl
# similar cases (answer-first tickets): the five most similar solved tickets as few-shot turns, their vote as a hint
run harnesses/similar_cases.harness --data examples/data/tickets_test.jsonl --out runs/examples/similar_cases.jsonl \
    --bank cases=examples/data/tickets_bank.jsonl
# self-ask: decompose into sub-questions, answer each (all of them in one engine call), compose
run harnesses/self_ask.harness --data examples/data/math.jsonl --out runs/examples/self_ask.jsonl \
    --set decompose_tokens=256 --set sub_tokens=256 --set solve_tokens=384
