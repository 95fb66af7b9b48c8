"""inferplan: predict, simulate and plan LLM serving deployments."""

__version__ = "0.1.0"
