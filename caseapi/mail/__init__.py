"""The e-mail channel of the case service (issue 14).

Package map (``MAIL_DESIGN.md`` is the source of truth):

- ``parse``: raw RFC 5322 bytes -> ``ParsedMail`` (headers, safe text, the reply without the
  quoted original, attachments, defects); pure, no I/O. ``MailParseError`` only when the
  input is not a mail at all.
- ``classify``: human, auto-reply, bulk, our own loop, or a bounce with the original
  Message-IDs and failed recipients; decides who may get an automatic answer.
- ``html2text``: HTML-only mail to safe text (never fetching anything), charset fallbacks,
  ``format=flowed``, and quoted-reply stripping.
- ``models``, ``threading``, ``config`` (outbound threading, ``mail_messages``, settings),
  ``ingest`` and ``imap`` (matching mail to cases, the IMAP poller) build on these.
"""
