"""The SIMULATED Kubernetes API server: a test and demo double, not a cluster.

It serves on loopback what the portal's Kubernetes code calls (namespaces, Deployments,
Services, KServe InferenceServices, events, server-side apply, Status errors) and moves rollouts
forward on its own clock, with failure injection. Only tests, the demo and its `simcluster`
management command import it; the import contract in `make lint` holds that.
"""
