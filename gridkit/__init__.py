"""gridkit: community grid management (网格化管理) in Python."""

__version__ = "0.1.0"
