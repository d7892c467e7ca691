"""mlv: version datasets, parameters and models next to code, in a content-addressed cache."""

__version__ = "0.1.0"
