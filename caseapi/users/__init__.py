"""People who sign in to the web console: staff and customer contacts, their
passwords (Argon2id) and their server-side sessions."""
