"""The front door's library (``experiments/run.py`` is the thin script over it):
settings (:mod:`agents.frontdoor.config`) and outputs (:mod:`agents.frontdoor.outputs`)."""
