"""SIP2: the self-check and e-book-vendor face (a TCP server speaking 3M SIP 2.00)."""
