"""The local web workbench (`inferplan ui`): the run registry, fit, simulate and plan in the browser.

It calls ``inferplan.api`` only, like the command line; long work runs in worker processes (``jobs``).
"""
