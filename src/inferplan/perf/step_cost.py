"""StepCost: seconds (and joules) one engine step takes for a batch shape.

A step runs prefill chunks ``(new_tokens, cached_tokens)`` and decodes
``(1 token, context)`` together. Each operator group costs a roofline

    t = max(FLOPs / (peak x eff_compute(T)), bytes / (bandwidth x eff_bw))

where ``eff_compute(T) = matmul_efficiency * T^a / (T^a + matmul_half_tokens^a)``
(small batches cannot fill a GEMM's tiles). Groups: dense linears (attention
projections, dense MLPs, routers, shared experts), routed experts (weights read
only for experts the batch touches), the LM head (sampled rows only), attention
over full and sliding-window layers, tensor-parallel all-reduces (two per layer,
ring algorithm), pipeline sends, and a per-step plus per-sequence host overhead.

The batch is summarised by a ``BatchShape`` of a few sums, so pricing a step is
O(1) scalar arithmetic — no cache is needed and there is no bucketing error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from inferplan.perf.collectives import allreduce_for
from inferplan.perf.deployment import Deployment
from inferplan.perf.kernels import linear_rates
from inferplan.perf.memory import kv_bytes_per_token_per_device
from inferplan.perf.order_stats import expected_max_standard_normal
from inferplan.perf.power import busy_power_w, clock_ratio

if TYPE_CHECKING:
    import numpy as np

# numpy is imported where arrays are made (a measured matmul curve, the decode leap), not here:
# `inferplan fit` prices scalar steps and answers without paying numpy's ~0.1 s import.
_ACT_BYTES = 2


class BatchShape(NamedTuple):
    """Sums over one step's batch; enough to price it exactly under the roofline model.

    A NamedTuple rather than a frozen dataclass: the simulator builds one per step, and
    it is immutable either way.
    """

    prefill_tokens: int = 0
    prefill_pairs: float = 0.0  # query-key pairs of prefill chunks, full-attention layers
    prefill_pairs_window: float = 0.0  # same with keys capped at the sliding window
    prefill_ctx_tokens: int = 0  # cached tokens the chunks attend to (read once)
    num_prefills: int = 0
    num_decodes: int = 0
    decode_ctx_tokens: int = 0  # keys the decodes read, full layers
    decode_ctx_window: int = 0  # keys the decodes read, sliding layers
    num_sampled: int = 0  # sequences emitting a token this step

    @classmethod
    def decodes(cls, batch: int, ctx_tokens: int, window_tokens: int = 0) -> BatchShape:
        """A pure-decode step: ``batch`` sequences, reading ``ctx_tokens`` keys in all on full-attention
        layers (``window_tokens`` on sliding ones), each sampling one token."""
        return cls(0, 0.0, 0.0, 0, 0, batch, ctx_tokens, window_tokens, batch)

    @classmethod
    def prefill_beside_decodes(cls, prompt: int, batch: int, ctx_tokens: int) -> BatchShape:
        """A whole ``prompt`` (nothing cached, full attention) beside ``batch`` decodes reading ``ctx_tokens``
        keys: the step that admits one arrival into a running batch."""
        return cls(prompt, prompt * (prompt + 1) / 2, 0.0, 0, 1, batch, ctx_tokens, 0, batch + 1)

    @property
    def num_tokens(self) -> int:
        return self.prefill_tokens + self.num_decodes

    @property
    def num_seqs(self) -> int:
        return self.num_prefills + self.num_decodes


def batch_shape(
    prefills: Iterable[tuple[int, int]] = (),
    decode_contexts: Iterable[int] = (),
    *,
    window: int | None = None,
    prefills_completing: int | None = None,
) -> BatchShape:
    """Summarise a batch: prefill chunks as (new, cached) and decodes by context length.

    ``prefills_completing`` counts chunks that finish their prompt (and so sample
    a token); by default every chunk does.
    """
    p_tok = p_ctx = n_pre = 0
    pairs = pairs_w = 0.0
    for new, cached in prefills:
        p_tok += new
        p_ctx += cached
        n_pre += 1
        pairs += chunk_pairs(new, cached)
        if window:
            pairs_w += chunk_pairs_window(new, cached, window)
    d_ctx = d_ctx_w = n_dec = 0
    for ctx in decode_contexts:
        n_dec += 1
        d_ctx += ctx
        if window:
            d_ctx_w += min(ctx, window)
    sampled = n_dec + (n_pre if prefills_completing is None else prefills_completing)
    return BatchShape(prefill_tokens=p_tok, prefill_pairs=pairs, prefill_pairs_window=pairs_w, prefill_ctx_tokens=p_ctx,
                      num_prefills=n_pre, num_decodes=n_dec, decode_ctx_tokens=d_ctx, decode_ctx_window=d_ctx_w,
                      num_sampled=sampled)


def chunk_pairs(new: int, cached: int) -> float:
    """Causal query-key pairs of a chunk of ``new`` tokens after ``cached`` ones: n*c + n(n+1)/2."""
    return new * cached + new * (new + 1) / 2


def chunk_pairs_window(new: int, cached: int, window: int) -> float:
    """Pairs when each query sees at most ``window`` keys (sliding-window attention)."""
    full = chunk_pairs(new, cached)
    if cached + new <= window:
        return full
    # token j (1-based, absolute position cached+j) sees min(cached+j, window) keys
    first_capped = max(1, window - cached)  # first j with cached + j >= window
    below = chunk_pairs(min(new, first_capped - 1), cached) if first_capped > 1 else 0.0
    return below + (new - (first_capped - 1)) * window


class StepCost:
    """Prices steps of one Deployment. Build once per replica; call ``seconds``/``cost`` per step."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        m, dev, prof, fmt = dep.model, dep.device, dep.device_profile, dep.weights
        tp = dep.tp
        rates = linear_rates(dep)
        dtype, kernel, clock = rates.dtype, rates.kernel, clock_ratio(dev)
        self.linear_flops_per_s = rates.dense_flops_per_s
        self.expert_rate_scale = rates.expert_scale  # routed experts' rate over the dense linears' (1 but MXFP4 MoE)
        self.vector_flops_per_s = rates.vector_flops_per_s
        self.curve_a = prof.matmul_curve_exponent
        self.half_tokens = prof.matmul_half_tokens ** self.curve_a
        self._has_curve = bool(prof.matmul_curve)  # measured: efficiency by rows, interpolated in log(rows)
        self._curve: tuple[np.ndarray, np.ndarray] | None = None  # (log rows, efficiency), built on first use
        # attention runs in the activation dtype: 16-bit, or fp32 for an fp32 model
        act_dtype = "fp32" if dtype == "fp32" else "bf16"
        act_bytes = 4 if dtype == "fp32" else _ACT_BYTES
        self.attn_flops_per_s = dev.peak_flops(act_dtype) * prof.attention_efficiency * clock
        self.bw = dev.memory_bw_bytes_per_s * prof.bandwidth_efficiency
        weight_scale = prof.bandwidth_efficiency / prof.bandwidth_efficiency_of(kernel)  # weights: their kernel's rate
        wbytes, dense_wbytes = fmt.bytes_per_weight, fmt.dense_bytes_per_weight
        dense_scale = 1.0 if fmt.experts_only else weight_scale  # 16-bit dense weights read at the plain rate
        embed_bytes = wbytes if fmt.quantizes_embeddings else max(2.0, wbytes)

        # 1. dense linears: every non-routed weight of every layer (one layer of each kind, times its count)
        dense_params = expert_params = 0
        self.expert_layers = 0
        self.num_experts = self.top_k = 1
        per_expert = 0.0
        num_moe = sum(m.moe_layers)
        kinds = [(num_moe, m.moe_layers.index(True))] if num_moe else []
        if num_moe < m.num_layers:
            kinds.append((m.num_layers - num_moe, m.moe_layers.index(False)))
        for count, layer in kinds:
            for op in m.layer_ops(layer):
                if op.num_experts > 1:
                    self.expert_layers += count
                    self.num_experts, self.top_k = op.num_experts, op.top_k
                    per_expert = op.params / op.num_experts
                    expert_params += count * op.active_params
                else:
                    dense_params += count * op.active_params
        self.dense_flops_per_token = 2 * dense_params / tp  # TP splits weights, DP attention splits tokens
        self.dense_bytes = dense_params * dense_wbytes / dep.attention_tp * dense_scale  # DP ranks each read all
        inter = m.moe.expert_intermediate_size * m.moe.top_k if m.moe else m.intermediate_size
        self.act_bytes_per_token = m.num_layers * (6 * m.hidden_size + 3 * inter / tp) * act_bytes
        # 2. routed experts
        self.expert_flops_per_token = 2 * expert_params / tp
        self.expert_bytes_each = self.expert_layers * per_expert * wbytes / tp * weight_scale
        # expert parallelism: the busiest device sets the pace (uniform routing; see docs/model.md)
        self.ep = tp if dep.ep else 1
        self.dp = dep.dp
        self._max_normal = expected_max_standard_normal(self.ep) if dep.ep else 0.0
        # 3. LM head on sampled rows only
        head = m.vocab_size * m.hidden_size
        self.head_flops_per_row = 2 * head / tp
        self.head_bytes = head * embed_bytes / dep.attention_tp * (weight_scale if fmt.quantizes_embeddings else 1.0)
        self.window, (self.full_layers, self.sliding_layers) = dep.attention_window, dep.attention_layers  # 4.
        self.attn_flops_per_pair = m.attention_flops_per_query_key / tp
        # DP attention: each rank reads the KV of its own share of the sequences
        self.kv_bytes_per_token_layer = kv_bytes_per_token_per_device(dep) * dep.pp / m.num_layers / dep.dp
        self._init_unfused(dep, inter)
        self._init_communication(dep, tp)
        # 6. host overhead and power
        self.step_overhead_s = prof.step_overhead_s + prof.per_layer_overhead_s * m.num_layers
        self.kernel_floor_s = prof.per_layer_kernel_floor_s * m.num_layers  # GPU time, under graphs too
        self.per_seq_overhead_s = prof.per_sequence_overhead_s
        self.host_overlapped = prof.host_overlapped  # the host time hides under the kernels (async scheduling)
        self.idle_w = dev.idle_power_w * dep.num_devices
        self.dynamic_w = (busy_power_w(dev) - dev.idle_power_w) * dep.num_devices
        self._decode_fixed: np.ndarray | None = None  # rows: dense + experts + head, communication, overhead

    def _init_unfused(self, dep: Deployment, inter: float) -> None:
        """Per token, an unfused engine's f32 elementwise traffic; without flash attention, per causal pair, its
        score matrix, and its KV reads at the unfused kernels' bandwidth (all nil for engines that fuse them)."""
        m, act = dep.model, dep.serving_engine.unfused_activations
        self.unfused_s_per_token = self.score_s_per_pair = 0.0
        if act is None:
            return
        values = act.hidden_passes * m.hidden_size + act.intermediate_passes * inter
        self.unfused_s_per_token = m.num_layers * values * act.bytes_per_value / dep.tp / self.bw
        if not dep.limits.flash_attention:
            heads = m.num_attention_heads / dep.attention_tp
            self.score_s_per_pair = heads * act.score_passes * act.bytes_per_value / dep.dp / self.bw
            # separate KQ, softmax and KQV kernels (V stored transposed) read the cache at their own rate
            prof = dep.device_profile
            self.kv_bytes_per_token_layer *= prof.bandwidth_efficiency / prof.bandwidth_efficiency_of("kv-unfused")

    def _init_communication(self, dep: Deployment, tp: int) -> None:
        """5. Communication: TP all-reduces (or DP-attention all-to-alls) and pipeline-stage sends, per token."""
        m, dev, prof = dep.model, dep.device, dep.device_profile
        self.tp = tp
        link = dev.tp_link_bytes_per_s() * prof.link_efficiency
        # two all-reduces per layer (attention and MLP outputs), each priced by its size (perf/collectives.py)
        self.allreduce = allreduce_for(dev, dep.serving_engine, tp, m.hidden_size * _ACT_BYTES)
        self.allreduces_per_step = 2 * m.num_layers if tp > 1 else 0
        self.token_bytes = m.hidden_size * _ACT_BYTES
        self.allreduce_s_per_token = self.allreduce_latency_s = 0.0  # all-to-alls of DP attention only
        if dep.dp_attention:  # no all-reduces; each MoE layer sends every token to its top-k experts and back
            self.allreduces_per_step = 0
            per_token = 2 * self.expert_layers * self.top_k * m.hidden_size * _ACT_BYTES * (tp - 1) / tp / tp
            self.allreduce_s_per_token = per_token / max(link, 1.0)
            self.allreduce_latency_s = 2 * self.expert_layers * dev.link_latency_us * 1e-6
        pp_link = (dev.inter_node_link_gb_s or dev.intra_node_link_gb_s or 10.0) * 1e9 * prof.link_efficiency
        self.pp_s_per_token = (dep.pp - 1) * m.hidden_size * _ACT_BYTES / pp_link
        self.pp_latency_s = (dep.pp - 1) * dev.link_latency_us * 1e-6

    # ---- pricing ------------------------------------------------------------------------
    def groups(self, s: BatchShape) -> tuple[float, float, float, float, float, float]:
        """Seconds per group: dense, experts, head, attention, communication, overhead."""
        tokens = s.prefill_tokens + s.num_decodes
        if tokens == 0:
            return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        flops_rate = self.linear_flops_per_s * self.matmul_eff(tokens)  # at least the vector rate; no max() call:
        flops_rate = flops_rate if flops_rate > self.vector_flops_per_s else self.vector_flops_per_s  # hot path
        bw = self.bw
        skew = 1.0  # DP attention: a prompt's chunk runs on one rank, however idle the others are
        if self.dp > 1 and s.num_prefills:
            skew = max(1.0, s.prefill_tokens / s.num_prefills * self.dp / tokens)
        dense = max(
            skew * tokens * self.dense_flops_per_token / flops_rate,
            (self.dense_bytes + tokens * self.act_bytes_per_token) / bw,
        ) + self.kernel_floor_s + tokens * self.unfused_s_per_token
        experts = 0.0
        if self.expert_layers:
            p = 1.0 - (1.0 - self.top_k / self.num_experts) ** tokens  # chance a given expert is touched
            touched = self.num_experts * p
            load = 1.0
            if self.ep > 1:  # the busiest device's routed tokens and touched experts, relative to the mean
                load, touched = self._ep_imbalance(tokens, p)
            experts = max(load * tokens * self.expert_flops_per_token / (flops_rate * self.expert_rate_scale),
                          touched * self.expert_bytes_each / bw)
        rows = s.num_sampled
        head = 0.0
        if rows:
            head_rate = self.linear_flops_per_s * self.matmul_eff(rows)
            head_rate = head_rate if head_rate > self.vector_flops_per_s else self.vector_flops_per_s
            head = max(rows * self.head_flops_per_row / head_rate, self.head_bytes / bw)
        pairs = self.full_layers * (s.prefill_pairs + s.decode_ctx_tokens)
        keys = self.full_layers * (s.prefill_ctx_tokens + s.decode_ctx_tokens + tokens)
        if self.sliding_layers:
            pairs += self.sliding_layers * (s.prefill_pairs_window + s.decode_ctx_window)
            window_ctx = min(s.prefill_ctx_tokens, s.num_prefills * (self.window or 0))
            keys += self.sliding_layers * (window_ctx + s.decode_ctx_window + tokens)
        attention = max(skew * pairs * self.attn_flops_per_pair / self.attn_flops_per_s,
                        keys * self.kv_bytes_per_token_layer / bw) + pairs * self.score_s_per_pair
        comm = (tokens * (self.allreduce_s_per_token + self.pp_s_per_token) + self.allreduce_latency_s
                + self.pp_latency_s)
        if self.allreduces_per_step:
            comm += self.allreduces_per_step * self.allreduce.seconds(tokens * self.token_bytes)
        overhead = self.step_overhead_s + self.per_seq_overhead_s * s.num_seqs
        return (dense, experts, head, attention, comm, overhead)

    def _ep_imbalance(self, tokens: int, p: float) -> tuple[float, float]:
        """(busiest device's routed tokens over the mean, experts touched counted as the busiest device's x devices).

        Each device holds E/ep experts. Routed assignments per device are Binomial(tokens*k, 1/ep)
        and touched local experts Binomial(E/ep, p); the expected maximum over ep devices is taken
        in the normal approximation, mean + sd * E[max of ep standard normals], capped at the total.
        """
        n, z = self.ep, self._max_normal
        assignments = tokens * self.top_k
        load = 1.0 + z * ((n - 1) / assignments) ** 0.5
        local = self.num_experts / n
        busiest = min(local, local * p + z * (local * p * (1.0 - p)) ** 0.5)
        return min(load, float(n)), busiest * n

    def matmul_eff(self, rows: int) -> float:
        """Share of the large-matmul rate a GEMM with ``rows`` rows reaches (tiles are not full)."""
        if self._has_curve:
            import numpy as np  # noqa: PLC0415  (see the note on imports above)

            curve = self._curve
            if curve is None:
                measured = self.dep.device_profile.matmul_curve
                self._curve = curve = (np.log([r for r, _ in measured]), np.array([e for _, e in measured]))
            return float(np.interp(np.log(rows), curve[0], curve[1]))
        r_a = rows if self.curve_a == 1.0 else rows**self.curve_a
        return float(r_a / (r_a + self.half_tokens))

    def seconds(self, s: BatchShape) -> float:
        return self.cost(s)[0]

    def cost(self, s: BatchShape) -> tuple[float, float]:
        """(seconds, joules). Power = idle + dynamic x (share of the step spent in kernels). Where the engine
        schedules a step ahead, the host time overlaps the kernels and the step takes the longer of the two."""
        d, e, h, a, c, o = self.groups(s)
        busy = d + e + h + a
        device = busy + c
        total = (device if device > o else o) if self.host_overlapped else device + o
        if total == 0.0:
            return 0.0, 0.0
        return total, total * self.idle_w + busy * self.dynamic_w

    def decode_steps(
        self, num_decodes: int | np.ndarray, ctx_sums: np.ndarray, window_sums: np.ndarray | None = None,
        *, out: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(seconds, joules) of consecutive pure-decode steps; seconds written to ``out`` if given.

        ``num_decodes`` is the batch size (one number, or one per step), ``ctx_sums[m]``
        the keys read in step m (full layers), ``window_sums[m]`` the same capped at the
        window. Same arithmetic, in the same order, as ``groups``/``cost`` with the
        attention term as an array, so a run of decode steps is priced in a few numpy
        operations and matches single steps bit for bit.
        """
        import numpy as np  # noqa: PLC0415  (see the note on imports above)

        tokens = num_decodes
        table = self._decode_fixed
        if table is None:
            self._decode_fixed = table = np.zeros((3, 0))
        try:
            parts = table.take(tokens, axis=1)
        except IndexError:  # a batch larger than any seen: grow the table
            table = self._fixed_decode_parts(int(np.max(tokens)))
            parts = table.take(tokens, axis=1)
        dense, c, o = parts[0], parts[1], parts[2]  # indexing: unpacking an array iterates it, 2x slower
        pairs = self.full_layers * ctx_sums
        keys = self.full_layers * (ctx_sums + tokens)
        if self.sliding_layers and window_sums is not None:
            pairs = pairs + self.sliding_layers * window_sums
            keys = keys + self.sliding_layers * (window_sums + tokens)
        attention = np.maximum(pairs * self.attn_flops_per_pair / self.attn_flops_per_s,
                               keys * self.kv_bytes_per_token_layer / self.bw)
        if self.score_s_per_pair:
            attention = attention + pairs * self.score_s_per_pair
        busy = dense + attention  # dense = (d + e) + h, summed in the same order as ``groups``
        c += busy  # busy + c (c is this call's own row)
        seconds = np.maximum(c, o, out=out) if self.host_overlapped else np.add(c, o, out=out)
        return seconds, seconds * self.idle_w + busy * self.dynamic_w

    def _fixed_decode_parts(self, max_batch: int) -> np.ndarray:
        """Per batch size: the step-time groups that do not depend on context (cached, grown on demand)."""
        import numpy as np  # noqa: PLC0415  (see the note on imports above)

        table = self._decode_fixed
        if table is None or table.shape[1] <= max_batch:
            size = max(max_batch + 1, 0 if table is None else 2 * table.shape[1])
            rows = [self.groups(BatchShape.decodes(k, 0)) for k in range(size)]
            self._decode_fixed = table = np.array([[r[0] + r[1] + r[2] for r in rows], [r[4] for r in rows],
                                                   [r[5] for r in rows]])
        return table

    # ---- conveniences for `fit` and tests ------------------------------------------
    def prefill_seconds(self, prompt_tokens: int, chunk: int | None = None) -> float:
        """Time to prefill one prompt alone, in chunks of at most ``chunk`` tokens."""
        chunk = chunk or prompt_tokens
        total, done = 0.0, 0
        while done < prompt_tokens:
            n = min(chunk, prompt_tokens - done)
            last = done + n >= prompt_tokens
            total += self.seconds(batch_shape([(n, done)], window=self.window, prefills_completing=int(last)))
            done += n
        return total

    def decode_seconds(self, batch: int, context: int) -> float:
        """One decode step of ``batch`` sequences, each with ``context`` tokens cached."""
        window = min(context, self.window) if self.window else 0
        return self.seconds(BatchShape.decodes(batch, batch * context, batch * window))
