"""Configuration: the settings types (a leaf every layer may import), loading and validating
TOML and environment, and secret handling."""
