"""The Administration section of the staff pages: library configuration, the audit log, API tokens."""
