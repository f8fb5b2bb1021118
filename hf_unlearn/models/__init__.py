"""Model architectures with Hub adapters (PyTorchModelHubMixin, safetensors)."""
