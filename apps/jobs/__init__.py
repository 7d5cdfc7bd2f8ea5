"""The ground floor for background work: handing work to the workers durably (handoff.py)."""
