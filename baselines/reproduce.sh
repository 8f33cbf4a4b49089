#!/usr/bin/env bash
# Reproduce the README's baseline figures for one task and hand on a CPU:
#   bash baselines/reproduce.sh lift-cube hb16 [policies...]     (default policies: bc act diffusion ibc)
#   HANDBENCH_SEED=1 bash baselines/reproduce.sh ...              (another training seed; default 0)
# 100 expert demos (demo seeds), each baseline trained with the cpu-small preset and seed 0 (one torch
# thread, so two can train side by side on a 2-core machine), then evaluated on the 50 hb-v1 eval seeds.
set -euo pipefail
task=${1:?usage: reproduce.sh TASK HAND [POLICY...]}
hand=${2:?usage: reproduce.sh TASK HAND [POLICY...]}
shift 2
if [ $# -eq 0 ]; then set -- bc act diffusion ibc; fi
out=${HANDBENCH_EXPERIMENTS:-experiments}
dataset="$out/demos/$task-$hand.hdf5"
seed=${HANDBENCH_SEED:-0}
suffix=$([ "$seed" = 0 ] && echo "" || echo "-s$seed")

[ -f "$dataset" ] || handbench generate-demos --task "$task" --hand "$hand" --num-demos 100 --workers 0 --out "$dataset"
for policy in "$@"; do
  run="$out/runs/$policy-$task-$hand$suffix"
  start=$(date +%s)
  handbench train --policy "$policy" --dataset "$dataset" --seed "$seed" --threads 1 --no-progress --out "$run"
  echo "$policy $task $hand seed $seed: trained in $(( $(date +%s) - start )) s" | tee -a "$out/train-times.txt"
  handbench eval --policy "$policy" --checkpoint "$run/policy.pt" --workers 0 --videos 2 --out "$out/results/$policy-$task-$hand$suffix"
done
