"""Decisions that both the rules and the planner read, each written once.

``rules/`` and ``plan/`` never import each other; what both need to agree on lives here:
which metrics each autoscaler scales on and their KEDA queries (:mod:`.metrics`),
replica bounds and the replicas a load needs (:mod:`.replicas`), the cold start
(:mod:`.coldstart`), storage URI schemes (:mod:`.storage`), alert floors
(:mod:`.alerts`), the profile's policy defaults (:mod:`.policy`) and the engine's KV block
size the prefix scorers hash with (:mod:`.block_size`).
"""
