"""The repository's own contracts: import layering, layout, tooling."""
