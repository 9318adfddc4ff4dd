"""The package version, in a module of its own so that low modules (results, io) can record it
without importing the package face, which loads the network layer."""

__version__ = "0.1.0"
