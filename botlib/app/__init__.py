"""The composition root: settings, logging, the wiring that picks adapters, the scheduler, the
command line and the Jupyter launchers. The only layer that reads the environment."""
