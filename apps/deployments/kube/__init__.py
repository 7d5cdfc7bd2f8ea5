"""Everything that talks to or about Kubernetes: manifests, apply, rollout status, the simulator.

Nothing in here imports Django models, so it can be used (and tested) on plain data.
"""
