"""Patronage: patron services for libraries."""
