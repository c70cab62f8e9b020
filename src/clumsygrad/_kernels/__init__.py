"""The kernel layer: ``pure`` (NumPy reference) and ``native`` (compiled), same names and signatures.

Pick one through ``clumsygrad.set_backend``; do not import ``native`` directly in library code.
"""
