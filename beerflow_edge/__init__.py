"""The composition root: the agent assembled from the runtime and every area, its CLI, the demo."""
