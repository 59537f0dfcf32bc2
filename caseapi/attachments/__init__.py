"""Files attached to cases: stored with the case, limited, served safely.

Every channel stores them through ``AttachmentService.store`` inside its own write
transaction (the API's upload and the mail ingest alike); the API adds
``POST/GET /v1/cases/{ref}/attachments``.
"""
