"""Training, data preparation and pipeline commands for cocomix-lens (outside the library)."""
