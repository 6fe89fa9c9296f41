"""SCIM 2.0 provisioning of people and groups by the ministries' identity systems (docs/scim.md)."""
