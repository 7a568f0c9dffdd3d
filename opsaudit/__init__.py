"""opsaudit: automated operations audits from the operational data itself."""

__version__ = "0.1.0"
