"""Dataset files: checked line by line against a backend's `DatasetRules` before anything is uploaded."""
