#!/usr/bin/env bash
# Real-GPU smoke test of cold and hot (vLLM sleep mode) switching. Needs an NVIDIA GPU, Docker
# with the NVIDIA runtime, the image vllm/vllm-openai:v0.33.0, and both models in the HF cache
# (or a network to fetch them): Qwen/Qwen2.5-0.5B-Instruct and Qwen/Qwen2.5-1.5B-Instruct.
#
#   scripts/gpu_smoke.sh                  # from the repository root, after `pip install -e .`
#   BUDGET_S=420 EAGER=false scripts/gpu_smoke.sh
#
# Steps: launch small (cold), switch to medium --cold, switch back (small cold, medium asleep),
# then hot switches both ways, a chat on each; then on medium directly: the drain (a request in
# flight survives /sleep?mode=wait), the level-2 wake in vLLM's order (tags=weights ->
# reload_weights -> tags=kv_cache, every answer checked, a greedy one-token probe equal before
# and after), the host RAM a level-1 sleeper holds (vLLM's "CuMemAllocator: sleep freed ...
# backed up in CPU" line, the container's RSS, and what status/list show), and vLLM's own
# "Sleep mode freed X GiB memory, Y GiB memory is still in use." lines.
# The whole run stays under BUDGET_S (default 450 s, i.e. 7.5 minutes): each step gets only
# what is left, and everything it started is stopped on exit. Target: hot switch <= 2 s.
set -euo pipefail

BUDGET_S=${BUDGET_S:-450}
EAGER=${EAGER:-true}          # skip torch.compile/CUDA graphs so two cold starts fit the budget
SMALL=${SMALL:-Qwen/Qwen2.5-0.5B-Instruct}
MEDIUM=${MEDIUM:-Qwen/Qwen2.5-1.5B-Instruct}
PORT_SMALL=${PORT_SMALL:-18100}
PORT_MEDIUM=${PORT_MEDIUM:-18101}
START=$(date +%s)
REPO=$(cd "$(dirname "$0")/.." && pwd)
AM=${AM:-$REPO/.venv/bin/agent-manager}
[[ -x $AM ]] || AM=$(command -v agent-manager || true)

die() { echo "gpu_smoke: $*" >&2; exit 1; }
left() { echo $((BUDGET_S - ($(date +%s) - START))); }
need_time() { (($(left) > ${1:-10})) || die "time budget of ${BUDGET_S}s used up before: $2"; }
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

[[ -n $AM ]] || die "agent-manager not found (pip install -e . in $REPO, or set AM=...)"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this needs an NVIDIA GPU"
command -v docker >/dev/null || die "docker not found"
docker compose version >/dev/null 2>&1 || die "the Docker Compose v2 plugin is missing"
docker image inspect vllm/vllm-openai:v0.33.0 >/dev/null 2>&1 \
  || echo "gpu_smoke: note: vllm/vllm-openai:v0.33.0 is not pulled yet; the first launch pulls it" >&2

WS=$(mktemp -d /tmp/gpu-smoke-XXXXXX)
export AGENT_MANAGER_HOME=$WS AGENT_MANAGER_INSTANCE=gpu-smoke-$$
cleanup() {
  timeout 90 "$AM" stop --all >/dev/null 2>&1 || true
  rm -rf "$WS"
}
trap cleanup EXIT

mkdir -p "$WS/agents" "$WS/compose"
spec() {  # name model port
  cat >"$WS/agents/$1.yaml" <<SPEC
model: $2
port: $3
bind: 127.0.0.1
max_context: 4096
# Two engines share the card: one awake, one asleep (it keeps its CUDA context and graphs).
gpu_memory_fraction: 0.40
max_num_seqs: 8
enforce_eager: $EAGER
switch: sleep
sleep_level: 1
SPEC
}
spec small "$SMALL" "$PORT_SMALL"
spec medium "$MEDIUM" "$PORT_MEDIUM"

nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
"$AM" list

need_time 60 "download"
timeout "$(left)" "$AM" download-models || die "models not in the cache and not downloadable"

launch() {  # agent [flags] -> prints "switch seconds" and keeps the JSON in $WS/last.json
  need_time 5 "launch $*"
  local t0 t1
  t0=$(now)
  if ! timeout "$(left)" "$AM" launch "$@" --timeout "$(($(left) - 2))" --json >"$WS/last.json" \
    2>"$WS/last.err"; then
    cat "$WS/last.err" >&2
    die "launch $* failed"
  fi
  t1=$(now)
  echo "$(secs "$t0" "$t1") $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["switch"])' \
    "$WS/last.json")" >>"$WS/walls"
  python3 - "$WS/last.json" "$(secs "$t0" "$t1")" "$*" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[3]:<22} {r['switch']:4} switch  {float(sys.argv[2]):6.2f} s wall  "
      f"(in-process {r['seconds']:.2f} s; asleep: {', '.join(r['asleep']) or '-'}; "
      f"stopped: {', '.join(r['stopped']) or '-'})")
PY
}

echo "== cold"
launch small
launch medium --cold
launch small                  # medium is put to sleep; small starts cold beside it
echo "== hot"
for _ in 1 2 3; do
  launch medium
  launch small
done

python3 - "$WS/walls" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
hot = [float(t) for t, kind in rows if kind == "hot"]
cold = [float(t) for t, kind in rows if kind == "cold"]
print(f"median wall: hot {statistics.median(hot):.2f} s ({len(hot)} switches, target <= 2 s), "
      f"cold {statistics.median(cold):.2f} s ({len(cold)})")
PY

echo "== chat"
need_time 20 "chat"
timeout 30 "$AM" chat small "Reply with one word: ready?" --max-tokens 8 --no-stream
launch medium
timeout 30 "$AM" chat medium "Reply with one word: ready?" --max-tokens 8 --no-stream

echo "== status"
"$AM" status

echo "== direct sleep/wake on medium (port $PORT_MEDIUM): drain, level-2 order, answers checked"
URL=http://127.0.0.1:$PORT_MEDIUM
timed() {  # label expected-substring curl-args...: prints the time, dies on a wrong answer
  local label=$1 want=$2 t0 t1 body
  shift 2
  t0=$(now)
  body=$(curl -fsS -m 120 "$@") || die "$label: HTTP error"
  t1=$(now)
  [[ -z $want || $body == *"$want"* ]] || die "$label answered $body (expected $want)"
  printf '%-44s %6s s  %s\n' "$label" "$(secs "$t0" "$t1")" "$body"
}
probe() {  # one greedy token, as the hot switch's check after a level-2 wake
  curl -fsS -m 60 "$URL/v1/completions" -H 'Content-Type: application/json' \
    -d "{\"model\":\"medium\",\"prompt\":\"The capital of France is\",\"max_tokens\":1,\"temperature\":0}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])'
}
need_time 30 "drain"
# Drain: a long generation in flight, then /sleep?mode=wait: it must finish, not be aborted.
curl -fsS -m 120 "$URL/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model":"medium","prompt":"Count to two hundred:","max_tokens":400,"min_tokens":400,"temperature":0}' \
  >"$WS/inflight.json" &
INFLIGHT=$!
sleep 1
timed "sleep level 1 mode=wait (drains)" '"sleeping"' -X POST "$URL/sleep?level=1&mode=wait"
wait "$INFLIGHT" || die "the in-flight request failed during a mode=wait sleep"
python3 - "$WS/inflight.json" <<'PY' || die "the in-flight request was cut by the sleep"
import json, sys
r = json.load(open(sys.argv[1]))["choices"][0]
print(f"in-flight request during the sleep: finish_reason={r['finish_reason']}")
sys.exit(r["finish_reason"] not in ("length", "stop"))
PY
timed "wake_up (level 1)" '"awake"' -X POST "$URL/wake_up"
BEFORE=$(probe)
need_time 30 "level 2"
timed "sleep level 2 mode=wait" '"sleeping"' -X POST "$URL/sleep?level=2&mode=wait"
timed "wake_up?tags=weights (still sleeping)" '"sleeping"' -X POST "$URL/wake_up?tags=weights"
timed "is_sleeping (scheduler still paused)" '"is_sleeping":true' "$URL/is_sleeping"
timed "collective_rpc reload_weights" '"results"' -X POST "$URL/collective_rpc" \
  -H 'Content-Type: application/json' -d '{"method":"reload_weights"}'
timed "wake_up?tags=kv_cache (awake)" '"awake"' -X POST "$URL/wake_up?tags=kv_cache"
timed "is_sleeping" '"is_sleeping":false' "$URL/is_sleeping"
AFTER=$(probe)
echo "greedy probe before level 2: '$BEFORE', after: '$AFTER'"
[[ $BEFORE == "$AFTER" ]] || die "the level-2 reload answers differently: '$BEFORE' vs '$AFTER'"
timeout 30 "$AM" chat medium "Reply with one word: ready?" --max-tokens 8 --no-stream

echo "== host RAM of a level-1 sleeper (CuMemAllocator line, container RSS, status)"
need_time 20 "host RAM"
launch small                  # medium falls asleep (level 1): its weights go to pinned host RAM
CID=$(docker ps -q --filter "label=com.docker.compose.project=gpu-smoke-$$-medium" | head -1)
[[ -n $CID ]] && docker stats --no-stream --format 'medium container RSS: {{.MemUsage}}' "$CID"
"$AM" logs medium 2>/dev/null | grep -E "CuMemAllocator: sleep freed" | tail -1 || true
"$AM" status
"$AM" list

echo "== vLLM's sleep lines"
for agent in small medium; do
  "$AM" logs "$agent" 2>/dev/null | grep -E "Sleep mode freed|to fall asleep|to wake up" \
    | sed "s/^/$agent: /" || true
done
echo "gpu_smoke: done in $(($(date +%s) - START)) s (budget ${BUDGET_S} s)"
