"""A replica's cold start, in its parts: the pod placed, the image pulled, the weights loaded, the engine up.

What an autoscaler waits for between asking for a replica and its first request. Each part with its
source (all measured on vLLM; SGLang and TensorRT-LLM start the same way here, for want of a
breakdown of their own):

- **placement** (``PLACEMENT_S``): a pod bound to a node with a free GPU and its container created.
  Huawei's month-long serverless trace (P130: Joosen et al., "Serverless Cold Starts and Where to
  Find Them", EuroSys 2025) has cold starts of up to 3 s where pod allocation dominates. A new GPU
  node (minutes) is not modelled: the pool's nodes are there.
- **image** (``IMAGE_GB`` at ``PULL_GB_S``): ``vllm/vllm-openai`` is about 12 GB compressed (vLLM
  issue #27154, Oct 2025); AWS measures 15-20 GB images pulling in 4-6 minutes per instance (its
  SOCI-index post on DLAMI/DLC), about 65 MB/s with unpacking. Zero where the node holds the image,
  as nodes that ran the pool before do (the default).
- **weights**: read at the device's host load bandwidth (``DeviceSpec.host_load_gb_s``; "Breaking the
  Ice", arXiv 2606.07362, measures 8 GB/s from the page cache to an H100 NVL, 0.54 GB/s from SSD).
- **engine** (``ENGINE_FIXED_S + ENGINE_PER_B_S x billions of parameters + COMPILE_S``): the same
  paper's warm starts of vLLM 0.10.1 (bootstrap, tokenizer, torch.compile from its cache, KV
  profiling, CUDA-graph capture) take 19.3 s for Qwen-0.5B and 25.6 s for Llama-2-13B less their
  weight loads: a line of 19.0 s plus 0.51 s per billion parameters. A pod whose torch.compile cache
  is not kept (the Kubernetes manifests keep only the Hugging Face cache) compiles afresh: 21-34 s
  against 4-8 s cached there, ``COMPILE_S`` = 20 s more.

Starts vary from pod to pod (page cache, node, registry): each is drawn lognormal around the sum with
sigma ``SPREAD`` = 0.3, our choice: it puts the paper's 47 s from SSD and Tensorfuse's 82 s with a
network volume (Llama-3.1-8B on L40S, "Reducing GPU Cold Start Time when using vLLM", Sep 2025) for
8B-class models within two sigmas of the median.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import weights_bytes

PLACEMENT_S = 3.0
IMAGE_GB = 12.0
PULL_GB_S = 0.065
ENGINE_FIXED_S = 19.0
ENGINE_PER_B_S = 0.51
COMPILE_S = 20.0
SPREAD = 0.3


@dataclass(frozen=True, slots=True)
class ColdStart:
    """The parts of one replica's start, in seconds, and how much starts vary around their sum."""

    placement_s: float
    image_s: float
    weights_s: float
    engine_s: float
    spread: float = SPREAD  # lognormal sigma of a start around the median

    @property
    def median_s(self) -> float:
        return self.placement_s + self.image_s + self.weights_s + self.engine_s

    def describe(self) -> str:
        return (f"{self.median_s:.0f} s median ({self.placement_s:.0f} s placing the pod, {self.image_s:.0f} s "
                f"pulling the image, {self.weights_s:.1f} s loading weights, {self.engine_s:.0f} s starting the "
                f"engine), spread {self.spread:g}")


def cold_start(dep: Deployment, *, image_cached: bool = True, spread: float = SPREAD) -> ColdStart:
    """The cold start of one replica of ``dep``: all its devices' weights through the host's load bandwidth."""
    weights_s = weights_bytes(dep) * dep.num_devices / dep.device.host_load_bytes_per_s
    billions = dep.model.params_total / 1e9
    return ColdStart(placement_s=PLACEMENT_S, image_s=0.0 if image_cached else IMAGE_GB / PULL_GB_S,
                     weights_s=weights_s, engine_s=ENGINE_FIXED_S + ENGINE_PER_B_S * billions + COMPILE_S,
                     spread=spread)
