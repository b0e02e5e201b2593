"""The configuration layer: forge.yaml's schema, its loading, and where local model files are found."""
