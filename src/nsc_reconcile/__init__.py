"""nsc-reconcile."""
