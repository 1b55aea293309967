"""The lending pages: catalog, center policies, authorizations, reservations and availability."""
