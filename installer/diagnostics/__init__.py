"""Support archives: collect, redact, analyse, pack (optionally encrypted), and open."""
