"""The configuration layer: forge.yaml's schema, its loading, and where local model files are found.

`sections` (each provider kind's section) -> `deployments` (kinds, names and hosts resolved into
deployments) -> `schema` (the root `ForgeConfig`) -> `loader` (file discovery, precedence,
error text); `local_models` finds model files. The public names are `forge_core`'s.
"""
