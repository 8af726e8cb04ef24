"""ECDI conformance cases, one module per family. Run by ``ecdi run`` through conformance.plugin."""
