"""The commands of flow_api, in groups that each hold the activation's ``Journal``."""
