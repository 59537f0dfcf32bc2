"""Customers as the inventory names them: contract status and contract terms."""
