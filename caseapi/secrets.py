"""Public: secrets at rest - the key box, key files, and the stored webhook secrets.

``SecretBox`` encrypts with the first of its keys and opens with any
(``caseapi.core.secrets``); ``seal_webhook_secrets`` checks and encrypts the stored
webhook secrets at start-up; ``rotate_webhook_secrets`` re-encrypts them under the
current key.
"""

from __future__ import annotations

from caseapi.core.secrets import (
    ENC_PREFIX,
    SecretBox,
    SecretDecryptError,
    SecretKeyError,
    generate_key,
    is_encrypted,
    open_secret,
    read_key_file,
    write_key_file,
)
from caseapi.notifications.at_rest import (
    StoredSecrets,
    rotate_webhook_secrets,
    seal_webhook_secrets,
)

__all__ = [
    "ENC_PREFIX",
    "SecretBox",
    "SecretDecryptError",
    "SecretKeyError",
    "StoredSecrets",
    "generate_key",
    "is_encrypted",
    "open_secret",
    "read_key_file",
    "rotate_webhook_secrets",
    "seal_webhook_secrets",
    "write_key_file",
]
