"""The supervisor: reconcile, schedule, launch, detect, verify, hand over, retry."""
