"""`invoke bench`: the runtime comparison (run.py), its probes, the hybrid bridge and the report."""
