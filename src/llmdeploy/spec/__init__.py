"""The spec: pydantic models, the YAML loader with positions, and profile resolution."""
