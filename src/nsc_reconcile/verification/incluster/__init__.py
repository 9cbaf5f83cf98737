"""Code that runs INSIDE the network (a Kubernetes Job on the cluster, a Databricks one-time
run), shipped as package data: ``smoke_job.py`` is standard library only (Python >= 3.9) and is
copied into a ConfigMap or a workspace file as it is; importable here for its tests.
"""
