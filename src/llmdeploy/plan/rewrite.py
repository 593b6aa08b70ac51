"""``router.modelRewrites``: an llm-d InferenceModelRewrite on the llmInferenceService target.

The llm-d router (``llm-d.ai/v1alpha2`` InferenceModelRewrite, router ≥ 0.9; the CRD in
``../shared/crds/llm-d.ai``) rewrites the request body's ``model`` before scheduling: a
request that names a rule's model exactly is sent as one of the rule's targets, chosen by
weight (weight ÷ sum of the weights; when one target has a weight, all must, so llmdeploy
always writes them). That routes a client-facing name to a LoRA adapter, or splits it
between adapters or the base model (an A/B by model name). The rewrite attaches to the
service's InferencePool, ``<name>-inference-pool`` for both the managed and the explicit pool.
"""

from __future__ import annotations

from ..effective import llmisvc as eff
from .model import Manifest, PlanContext

__all__ = ["rewrite_manifest"]


def rewrite_manifest(ctx: PlanContext) -> Manifest | None:
    rewrites = ctx.spec.router.model_rewrites
    if not rewrites or ctx.spec.deployment.target != "llmInferenceService":
        return None
    name = f"{ctx.name}-model-rewrite"
    rules = [{"matches": [{"model": {"type": "Exact", "value": r.model}}],
              "targets": [{"modelRewrite": t.model, "weight": t.weight} for t in r.targets]} for r in rewrites]
    spec = {"poolRef": {"group": "inference.networking.k8s.io", "kind": "InferencePool",
                        "name": eff.inference_pool_name(ctx.name)}, "rules": rules}
    return Manifest("llmisvc/inferencemodelrewrite.yaml.j2", "InferenceModelRewrite", name,
                    {"metadata": ctx.metadata(name, component="model-rewrite"), "spec": spec},
                    namespace=ctx.namespace, aliases=("rewrite", "router"))
