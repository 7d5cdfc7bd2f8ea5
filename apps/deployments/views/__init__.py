"""The deployments app's browser pages: environments, deploy requests, releases and the matrix."""
