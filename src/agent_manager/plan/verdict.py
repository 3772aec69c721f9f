"""One agent's verdict on one GPU (`plan_agent`) or on the host's RAM (`plan_cpu_agent`). Pure.

Both reduce an agent to the same few numbers (`Sizing`): the budget vLLM takes, the memory it
needs besides the KV cache, the KV space left, and the free memory its start check sees. Then
one function (`_judge`) decides and the fix suggester (`fixes.py`) says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_manager.plan import fixes as fix
from agent_manager.plan.memory import (
    CPU_RUNTIME_BYTES,
    CUDA_CONTEXT_BYTES,
    FP8_KV,
    GIB,
    NON_TORCH_BYTES,
    REDUNDANCY_BYTES,
    activation_peak_bytes,
    batch_defaults,
    budget_bytes,
    cudagraph_bytes,
    cudagraph_capture_sizes,
    human_int,
    kv_bytes_for_context,
    kv_bytes_per_token,
    kv_dtype_bytes,
    largest_context,
)
from agent_manager.plan.models import (
    AgentPlan,
    Allowance,
    CheckpointFacts,
    GpuTarget,
    HostTarget,
    Verdict,
)
from agent_manager.plan.shape import ModelShape
from agent_manager.plan.sizing import Sizing, fmt
from agent_manager.spec.agents import Agent, AgentSpec


def plan_agent(agent: Agent, facts: CheckpointFacts, target: GpuTarget) -> AgentPlan:
    """The verdict for one agent on one GPU."""
    spec = agent.spec
    free = target.free_after_stopping_agents()
    # vLLM's snapshot is taken after its CUDA context exists: the context lowers what it sees.
    seen = (target.total_bytes if free is None else free) - CUDA_CONTEXT_BYTES
    sizing = Sizing(
        engine="cuda",
        fraction=spec.gpu_memory_fraction,
        budget=budget_bytes(target.total_bytes, spec.gpu_memory_fraction),
        total=target.total_bytes,
        start_free=seen,
        on_paper=free is None,
    )
    device_total = target.device_total_bytes or target.total_bytes
    seqs, batched = _batch(spec, batch_defaults(device_total, target.name))
    draft = _measure(agent, facts, sizing, seqs)
    if sizing.shape is not None:
        speculative = int((spec.speculative or {}).get("num_speculative_tokens") or 0)
        sizing.allowances = _gpu_allowances(sizing.shape, spec, seqs, batched, 1 + speculative)
    others = [
        f"{h.label} ({fmt(h.used_bytes or 0)})"
        for h in target.holders
        if not h.agent and h.used_bytes
    ]
    return _judge(agent, facts, sizing, draft, free, others)


def plan_cpu_agent(agent: Agent, facts: CheckpointFacts, host: HostTarget) -> AgentPlan:
    """The verdict for one `engine: cpu` agent on the host's RAM.

    The compose file always sets VLLM_CPU_KVCACHE_SPACE to `cpu_kv_cache_gib`, so vLLM's CPU
    worker never checks a share of RAM: it loads the weights, then refuses to allocate the KV
    space unless that much RAM is still available. The plan's budget is therefore weights +
    runtime allowances + KV space, and it must fit the RAM available now.
    """
    spec = agent.spec
    kv_space = spec.cpu_kv_cache_gib * GIB
    sizing = Sizing(
        engine="cpu",
        fraction=spec.gpu_memory_fraction,
        budget=kv_space,  # the least it takes; weights and allowances are added once known
        total=host.total_bytes,
        start_free=host.available_bytes,
        kv_space=kv_space,
    )
    seqs, batched = _batch(spec, batch_defaults(0, "", "cpu", spec.tensor_parallel_size))
    draft = _measure(agent, facts, sizing, seqs)
    if sizing.shape is not None:
        sizing.allowances = [
            Allowance(
                name="vLLM runtime",
                bytes=CPU_RUNTIME_BYTES,
                source="estimate: Python, torch and vLLM in the engine process",
            ),
            _activation(sizing.shape, batched, seqs),
        ]
    return _judge(agent, facts, sizing, draft, host.available_bytes, [])


@dataclass
class _Draft:
    unknowns: list[str]
    notes: list[str]


def _measure(agent: Agent, facts: CheckpointFacts, sizing: Sizing, seqs: int) -> _Draft:
    """Fill the model's numbers into `sizing`; what is missing or approximate goes in the draft."""
    spec = agent.spec
    draft = _Draft(unknowns=list(facts.problems), notes=[])
    sizing.seqs = seqs
    if (spec.speculative or {}).get("model"):
        draft.notes.append("the speculative draft model's weights and KV cache are not counted")
    for flag in ("--kv-cache-memory-bytes", "--cpu-offload-gb", "--max-cudagraph-capture-size"):
        if _extra_arg(spec, flag) is not None:
            draft.notes.append(f"{flag} in extra_args is not modelled; the figures ignore it")
    shape = sizing.shape = facts.shape
    if shape is not None:
        sizing.model_max = shape.context_limit
        if shape.attention_note:
            draft.notes.append(
                f"{spec.model} {shape.attention_note}; the KV figure is an upper bound"
            )
        element = kv_dtype_bytes(spec.kv_cache_dtype, shape, spec.dtype)
        if element is None:
            draft.unknowns.append(f"KV cache dtype '{spec.kv_cache_dtype}' is not modelled")
        else:
            sizing.bpt = kv_bytes_per_token(shape, element, spec.tensor_parallel_size)
    if facts.weights.estimated:
        draft.notes.append(f"weights {facts.weights.source}: no file sizes were available")
    return draft


def _judge(
    agent: Agent,
    facts: CheckpointFacts,
    s: Sizing,
    draft: _Draft,
    free: int | None,
    others: list[str],
) -> AgentPlan:
    spec = agent.spec
    weights = facts.weights
    if weights.bytes is not None and s.shape is not None:
        s.fixed = weights.bytes + sum(a.bytes for a in s.allowances)
        if s.kv_space is not None:
            s.budget = s.fixed + s.kv_space  # CPU: what must be available in host RAM
    reasons: list[str] = []
    fixes: list[str] = []
    largest = largest_fp8 = None
    room = s.room
    if room is not None and s.bpt is not None and s.shape is not None:
        largest = largest_context(room, s.bpt, s.model_max)
        if spec.kv_cache_dtype not in FP8_KV and s.engine == "cuda":
            fp8 = kv_bytes_per_token(s.shape, 1, spec.tensor_parallel_size)
            largest_fp8 = largest_context(room, fp8, s.model_max)
    context, context_source = _context(spec, largest, s, draft)

    kv_cache = kv_bytes_for_context(s.bpt, context) if s.bpt and context is not None else None
    needed = s.fixed + kv_cache if s.fixed is not None and kv_cache is not None else None
    headroom = room - kv_cache if room is not None and kv_cache is not None else None
    verdict: Verdict = "unknown"
    if needed is not None and headroom is not None and context is not None and room is not None:
        verdict = "fits"
        over_budget = False
        long_ok = "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in spec.env
        if s.model_max is not None and context > s.model_max and not long_ok:
            reasons.append(
                f"max_context {context} is above the model's limit of {s.model_max} tokens "
                "(vLLM refuses it)"
            )
            fixes.append(f"set max_context: {s.model_max} (or less)")
            over_budget = kv_bytes_for_context(s.bpt or 0, s.model_max) > room
        if spec.max_context == "auto" and not largest:
            over_budget = True
            reasons.append("no memory is left for even one block of KV cache")
        elif headroom < 0:
            over_budget = True
            reasons.append(_over_budget_reason(s, needed, kv_cache or 0, context))
        if s.start_free < s.budget:
            reasons.append(_start_reason(s, free))
        if reasons:
            verdict = "does not fit"
        if over_budget:
            fixes += fix.budget_fixes(spec, s, context, largest)
        if s.start_free < s.budget:
            fixes += fix.start_fixes(spec, s, needed, others, context)
    elif s.shape is None:
        draft.unknowns.append("KV cache size unknown without config.json")
    if weights.bytes is None:
        draft.unknowns.append(f"weights unknown ({weights.source})")
    return AgentPlan(
        agent=agent.name,
        model=spec.model,
        revision=spec.revision,
        engine=s.engine,
        verdict=verdict,
        gpu_memory_fraction=spec.gpu_memory_fraction,
        budget_bytes=s.budget,
        budget_source=_budget_source(s),
        weights_bytes=weights.bytes,
        weights_source=weights.source,
        weights_estimated=weights.estimated,
        kv_cache_dtype=spec.kv_cache_dtype,
        kv_bytes_per_token=s.bpt,
        context=context,
        context_source=context_source,
        model_max_context=s.model_max,
        kv_cache_bytes=kv_cache,
        allowances=s.allowances,
        needed_bytes=needed,
        headroom_bytes=headroom,
        largest_context=largest,
        largest_context_fp8=largest_fp8,
        free_bytes=free,
        reasons=reasons,
        fixes=list(dict.fromkeys(fixes)),
        unknowns=draft.unknowns,
        notes=draft.notes,
    )


def _context(
    spec: AgentSpec, largest: int | None, s: Sizing, draft: _Draft
) -> tuple[int | None, str]:
    """The context vLLM will use: the spec's, the model's own limit when unset, or auto-fit."""
    if isinstance(spec.max_context, int):
        return spec.max_context, "max_context"
    if spec.max_context == "auto":
        return largest, "auto (vLLM fits it to memory)"
    if s.model_max is None and s.shape is not None:
        draft.unknowns.append("config.json gives no context length (max_position_embeddings)")
    return s.model_max, "model's limit from config.json (max_context unset)"


def _budget_source(s: Sizing) -> str:
    if s.kv_space is not None:
        return f"weights + allowances + cpu_kv_cache_gib {fmt(s.kv_space)}"
    return f"{s.fraction:.2f} x total"


def _over_budget_reason(s: Sizing, needed: int, kv_cache: int, context: int) -> str:
    if s.kv_space is not None:
        return (
            f"one request of {context} tokens needs {fmt(kv_cache)} of KV cache but "
            f"cpu_kv_cache_gib: {s.kv_space // GIB} gives {fmt(s.kv_space)}"
        )
    share = f"{s.fraction:.2f} x {fmt(s.total)}"
    return f"needs {fmt(needed)} but the budget is {fmt(s.budget)} ({share})"


def _start_reason(s: Sizing, free: int | None) -> str:
    if s.kv_space is not None:
        return (
            f"vLLM needs {fmt(s.budget)} of host RAM for the weights, its runtime and "
            f"cpu_kv_cache_gib: {s.kv_space // GIB} but only {fmt(s.start_free)} is available "
            "(once the weights are loaded, vLLM refuses to allocate a KV space larger than the "
            "RAM still available)"
        )
    context = f"~{fmt(CUDA_CONTEXT_BYTES)}"
    if free is None:
        return (
            f"vLLM requests {fmt(s.budget)} at start but an idle {fmt(s.total)} card has only "
            f"about {fmt(s.start_free)} free once vLLM's CUDA context ({context}) exists"
        )
    return (
        f"vLLM requests {fmt(s.budget)} at start but only {fmt(free)} is free, "
        f"{fmt(s.start_free)} once its CUDA context ({context}) exists "
        "(vLLM refuses to start below that)"
    )


def _gpu_allowances(
    shape: ModelShape, spec: AgentSpec, seqs: int, batched: int, decode_query_len: int
) -> list[Allowance]:
    capture = len(cudagraph_capture_sizes(seqs, decode_query_len))
    return [
        Allowance(
            name="non-torch",
            bytes=NON_TORCH_BYTES,
            source="allowance: cuBLAS/cuBLASLt workspaces and allocator slack after vLLM's "
            "snapshot (the CUDA context is outside the budget)",
        ),
        _activation(shape, batched, seqs),
        Allowance(
            name="CUDA graphs",
            bytes=cudagraph_bytes(shape, seqs, spec.enforce_eager, decode_query_len),
            source="enforce_eager: none captured"
            if spec.enforce_eager
            else f"estimate: {capture} capture sizes up to min(2 x {seqs} max_num_seqs, 512)",
        ),
        Allowance(
            name="redundancy",
            bytes=REDUNDANCY_BYTES,
            source="vLLM's 150 MiB margin for suggested KV sizes",
        ),
    ]


def _activation(shape: ModelShape, batched: int, seqs: int) -> Allowance:
    return Allowance(
        name="activation peak",
        bytes=activation_peak_bytes(shape, batched, seqs),
        source=f"estimate: dummy forward of {batched} batched tokens + sampler for "
        f"{seqs} sequences",
    )


def _batch(spec: AgentSpec, defaults: tuple[int, int]) -> tuple[int, int]:
    """max_num_seqs and max_num_batched_tokens: the spec's, else vLLM's defaults."""
    batched_arg = _extra_arg(spec, "--max-num-batched-tokens")
    batched = human_int(batched_arg) if batched_arg else None
    return spec.max_num_seqs or defaults[0], batched or defaults[1]


def _extra_arg(spec: AgentSpec, flag: str) -> str | None:
    args = spec.extra_args
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None
