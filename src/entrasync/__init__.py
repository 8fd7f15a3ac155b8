"""entrasync: a people directory kept in sync with Microsoft Entra ID."""

__version__ = "0.1.0"
