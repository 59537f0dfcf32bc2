"""E-mail with customers: threading of the mails we send and receive, the ``mail`` settings."""
