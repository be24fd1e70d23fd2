"""The project's reference algorithm: a standalone people-detection engine.

Nothing in this folder imports Django or the facility's apps: it ships inside an
algorithm package and runs as ``python -m algorithms.reference.engine`` (or, copied
elsewhere, as ``python -m engine``).
"""
